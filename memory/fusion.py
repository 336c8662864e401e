"""Reciprocal rank fusion: one ranking from several.

RRF needs no score calibration between retrievers (cosine similarities and BM25 scores
live on different scales): each ranking adds ``weight / (k + rank)`` to a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["rrf", "rrf_max", "recency_ranking"]


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = 60) -> dict[int, float]:
    """Fuse ``(ranked ids, weight)`` lists into ``id -> score`` (higher is better)."""
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, row_id in enumerate(ids, start=1):
            scores[row_id] = scores.get(row_id, 0.0) + weight / (k + rank)
    return scores


def rrf_max(weights: Sequence[float], k: int = 60) -> float:
    """The best possible fused score (first in every ranking), to scale scores to [0, 1]."""
    return sum(w for w in weights if w > 0) / (k + 1) or 1.0


def recency_ranking(times: Mapping[int, float]) -> list[int]:
    """Candidate ids, most recently stored first."""
    return sorted(times, key=lambda i: (-times[i], -i))
