"""What the batching tests share: a one-message chat, requests run at once from threads, and
one intra-op thread for the module (on a busy 2-core machine a second OpenMP thread mostly
spins waiting for a core, which made these tests 3-4x slower)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["chat", "run_concurrently", "one_torch_thread"]


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def run_concurrently(backend: Any, jobs: list[tuple[float, Any, Any]]) -> tuple[list[Any], list[Any]]:
    """``jobs``: (delay_s, messages, options), each streamed from its own thread after its
    delay; returns the texts and the streams."""
    texts: list[Any] = [None] * len(jobs)
    streams: list[Any] = [None] * len(jobs)

    def run(i: int, delay: float, messages: Any, options: Any) -> None:
        time.sleep(delay)
        streams[i] = backend.stream(messages, options)
        texts[i] = streams[i].text()

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return texts, streams


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Import it into a test module to run that module on one intra-op thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
