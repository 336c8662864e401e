"""Latency of the understand stage: embed one turn, then classify intent and sentiment.

``llmos bench`` calls :func:`bench_classify`; the target is under 20 ms p50 on CPU for the
whole stage (the embedding dominates; the heads take microseconds).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["bench_classify", "BENCH_TEXTS"]

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


def bench_classify(n: int = 50, *, embedder: Any = None, warmup: int = 3) -> dict[str, Any]:
    """Time ``n`` turns of embed + intent + sentiment (one turn at a time, as in a chat).

    Returns ``p50_ms`` / ``p95_ms`` for the whole stage and the same for the heads alone.
    """
    from agent.understand.config import UnderstandConfig
    from agent.understand.pipeline import build_understanding

    if embedder is None:
        from memory.embedder import SentenceEmbedder

        embedder = SentenceEmbedder()
    understanding = build_understanding(UnderstandConfig(), embedder)
    texts = [BENCH_TEXTS[i % len(BENCH_TEXTS)] for i in range(n + warmup)]
    total, heads = [], []
    prior: list[float] = []
    for i, text in enumerate(texts):
        start = time.perf_counter()
        vector = embedder.encode([text])[0]
        embedded = time.perf_counter()
        understood = understanding.analyze(text, vector, prior)
        end = time.perf_counter()
        if understood.sentiment is not None:
            prior = [*prior[-20:], understood.sentiment.score]
        if i >= warmup:
            total.append((end - start) * 1000)
            heads.append((end - embedded) * 1000)
    return {
        "n": n,
        "p50_ms": round(float(np.percentile(total, 50)), 2),
        "p95_ms": round(float(np.percentile(total, 95)), 2),
        "heads_p50_ms": round(float(np.percentile(heads, 50)), 3),
        "heads_p95_ms": round(float(np.percentile(heads, 95)), 3),
        "embedder": getattr(embedder, "name", "?"),
    }
