"""Latency of the understand stage: embed one turn, then classify intent and sentiment.

``llmos bench`` calls :func:`bench_classify`; the target is under 20 ms p50 on CPU for the
whole stage. The embedding dominates; the sentiment branch (the encoder's top layers,
fine-tuned, fed by a lower layer of the same pass) adds a few milliseconds and is timed
with the heads; the heads alone take well under a millisecond.

The stage is timed twice: with torch's threads as the process has them (what the agent
does today) and with torch pinned to one thread. Encoding one short sentence is a few
small matrix products, where a second thread buys little and, on a machine whose cores
are busy with other work, costs a lot (idle threads spin-wait for the busy one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["bench_classify", "BENCH_TEXTS", "torch_threads"]

BENCH_TEXTS = (
    "hi there",
    "I want to talk to a real person",
    "this is the third time your app lost my order, I'm furious",
    "can you summarize the article I pasted above?",
    "write a python function that parses ISO dates",
    "explain how a hash map works",
    "what are your opening hours on Sunday?",
    "thanks, that was really helpful",
    "book me a table for two at eight",
    "my package arrived broken and nobody answers my emails",
)


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run the block with torch's intra-op threads set to ``n`` (None: leave them); yields
    the number in force."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _time_turns(understanding: Any, embedder: Any, texts: list[str],
                warmup: int) -> tuple[list[float], list[float], list[float]]:
    """Wall milliseconds per turn, of the heads alone, and the calling thread's CPU
    milliseconds per turn (with one torch thread, the compute a quiet core would need)."""
    total, heads, cpu = [], [], []
    prior: list[float] = []
    for i, text in enumerate(texts):
        start, start_cpu = time.perf_counter(), time.thread_time()
        vector = embedder.encode([text])[0]
        embedded = time.perf_counter()
        understood = understanding.analyze(text, vector, prior)
        end, end_cpu = time.perf_counter(), time.thread_time()
        if understood.sentiment is not None:
            prior = [*prior[-20:], understood.sentiment.score]
        if i >= warmup:
            total.append((end - start) * 1000)
            heads.append((end - embedded) * 1000)
            cpu.append((end_cpu - start_cpu) * 1000)
    return total, heads, cpu


def _p(values: list[float], q: float, digits: int = 2) -> float:
    return round(float(np.percentile(values, q)), digits)


def bench_classify(n: int = 50, *, embedder: Any = None, warmup: int = 3) -> dict[str, Any]:
    """Time ``n`` turns of embed + intent + sentiment (one turn at a time, as in a chat).

    Returns ``p50_ms`` / ``p95_ms`` for the whole stage with the process's torch threads,
    ``p50_ms_1_thread`` / ``p95_ms_1_thread`` with torch on one thread,
    ``cpu_ms_p50_1_thread`` (CPU time of that run: what a quiet core needs, whatever else
    the machine is doing), and the heads alone (``heads_*``: intent and sentiment, the
    sentiment branch's layers included; ``sentiment_branch``: its depth, 0 for none).
    """
    from agent.understand.config import UnderstandConfig
    from agent.understand.pipeline import build_understanding

    if embedder is None:
        from agent.models.embedder import SentenceEmbedder

        embedder = SentenceEmbedder()
    understanding = build_understanding(UnderstandConfig(), embedder)
    texts = [BENCH_TEXTS[i % len(BENCH_TEXTS)] for i in range(n + warmup)]
    with torch_threads(None) as threads:
        total, heads, _ = _time_turns(understanding, embedder, texts, warmup)
    with torch_threads(1):
        single, _, cpu = _time_turns(understanding, embedder, texts, warmup)
    return {
        "n": n,
        "p50_ms": _p(total, 50),
        "p95_ms": _p(total, 95),
        "torch_threads": threads,
        "p50_ms_1_thread": _p(single, 50),
        "p95_ms_1_thread": _p(single, 95),
        "cpu_ms_p50_1_thread": _p(cpu, 50),
        "heads_p50_ms": _p(heads, 50, 3),
        "heads_p95_ms": _p(heads, 95, 3),
        "embedder": getattr(embedder, "name", "?"),
        "sentiment_branch": getattr(getattr(understanding.sentiment, "branch", None), "depth", 0),
    }
