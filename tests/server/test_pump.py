"""The Pump hands a worker's pieces to the event loop in time-bounded batches."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agent.server.streaming import Pump, Source


def _source(n: int, gap_s: float) -> Source:
    def pieces() -> Any:
        for i in range(n):
            time.sleep(gap_s)
            yield f"p{i} "

    return Source(pieces(), cancel=lambda: None, finish=lambda: "finished")


async def _drain(pump: Pump) -> list[tuple[float, str, Any]]:
    """(seconds since the pump started, kind, value) for everything the pump yields."""
    start = time.perf_counter()
    await pump.started()
    return [(time.perf_counter() - start, kind, value) async for kind, value in pump]


def _run(n: int, gap_s: float, flush_s: float) -> tuple[list[tuple[float, str, Any]], float]:
    async def main() -> tuple[list[tuple[float, str, Any]], float]:
        with ThreadPoolExecutor(2) as pool:
            began = time.perf_counter()
            pump = Pump(lambda: _source(n, gap_s), executor=pool, flush_s=flush_s)
            events = await _drain(pump)
            return events, time.perf_counter() - began
    return asyncio.run(main())


def test_pieces_are_batched_by_the_flush_interval_and_nothing_is_lost() -> None:
    events, _ = _run(20, 0.005, 0.05)
    batches = [value for _, kind, value in events if kind == "pieces"]
    assert "".join(p for batch in batches for p in batch) == "".join(f"p{i} " for i in range(20))
    # 20 pieces over ~100 ms with a 50 ms interval: a handful of hand-overs, not 20
    assert len(batches) <= 6
    assert events[-1][1:] == ("done", "finished")


def test_the_first_piece_and_the_end_do_not_wait_for_the_interval() -> None:
    events, total = _run(3, 0.01, 5.0)  # an interval far longer than the whole reply
    kinds = [kind for _, kind, _ in events]
    assert kinds[0] == "pieces" and events[0][2] == ["p0 "]  # the first piece alone, at once
    assert events[0][0] < 2.0
    assert kinds[-1] == "done"
    assert total < 2.0  # the end is handed over at once, not after the 5 s interval


def test_no_interval_hands_pieces_over_as_they_come() -> None:
    events, _ = _run(5, 0.02, 0.0)
    batches = [value for _, kind, value in events if kind == "pieces"]
    assert sum(len(b) for b in batches) == 5
    assert len(batches) >= 3  # 20 ms apart and an idle loop: (nearly) one hand-over each


@pytest.mark.parametrize("flush_s", [0.0, 0.05])
def test_a_reply_that_is_not_streamed_gets_its_result(flush_s: float) -> None:
    async def main() -> Any:
        with ThreadPoolExecutor(2) as pool:
            pump = Pump(lambda: _source(10, 0.002), executor=pool, flush_s=flush_s)

            async def connected() -> bool:
                return False
            return await pump.result(connected)
    assert asyncio.run(main()) == "finished"
