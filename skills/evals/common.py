"""What the skill evaluations share: the model call in batches, progress, timing."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from agent.options import GenerationOptions
from skills.text import ask_model

__all__ = ["generate_many", "progress", "Stopwatch"]

T = TypeVar("T")


def generate_many(backend: Any, conversations: Sequence[list[dict[str, str]]], *, max_new_tokens: int,
                  stop: Sequence[str] = (), batch_size: int = 1,
                  until: Callable[[str], bool] | None = None) -> list[str]:
    """Greedy replies to many chats: one padded batch at a time on a local model (what
    makes a GPU pay off), one by one otherwise (then ``until`` may end each reply early,
    exactly as the skill does)."""
    options = GenerationOptions(temperature=0.0, max_new_tokens=max_new_tokens, repetition_penalty=1.1,
                                stop=tuple(stop))
    model = getattr(backend, "model", None)
    if batch_size > 1 and model is not None and hasattr(model, "generate_batch"):
        out: list[str] = []
        for k in range(0, len(conversations), batch_size):
            out += model.generate_batch(list(conversations[k:k + batch_size]), options)
        return out
    if until is None:
        return [backend.stream(list(c), options).text() for c in conversations]
    out = []
    for chat in conversations:
        system, *rest = chat
        out.append(ask_model(backend, system["content"], rest[-1]["content"], history=rest[:-1],
                             max_new_tokens=max_new_tokens, stop=stop, until=until))
    return out


def progress(items: Iterable[T], total: int, desc: str, enabled: bool = True) -> Iterator[T]:
    """A tqdm bar on stderr when ``enabled`` (the CLI), plain iteration otherwise."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False)


class Stopwatch:
    """Collects per-item seconds; reports the median (the machines are shared, so means lie)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @contextmanager
    def measure(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times.append(time.perf_counter() - start)

    def median_ms(self) -> float:
        return round(statistics.median(self.times) * 1000, 1) if self.times else 0.0

    def total_s(self) -> float:
        return round(sum(self.times), 1)
