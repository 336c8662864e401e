"""Learned re-ranking: a logistic regression over signals recall already has.

The fused ranking (dense + BM25 by RRF, neighbours, speakers) sums ranks; it cannot learn
that a question turn ("What did you paint?") rarely holds an answer, that a two-word
"Bye, take care!" is not a memory however well its names match, or that a turn whose
session holds other strong matches is more likely the one. A linear model over a few such
features re-orders the best ``rerank_depth`` conversation turns. Its weights are a few
numbers in the configuration (``memory.rerank_weights``), fitted on LoCoMo conversations
conv-26, conv-30 and conv-41 only (conv-42 and conv-43 held out, see docs/memory.md):

    python -m memory.fit_rerank --locomo locomo5_dev.json --conversations conv-26,conv-30,conv-41

No model runs per query: the features come from the candidates' scores, their text and
their session, so re-ranking 50 candidates costs well under a millisecond. Only memories
of kind ``turn`` move; documents and facts keep their fused places.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURES", "DEFAULT_WEIGHTS", "Candidate", "features", "rerank", "fit_logistic"]

FEATURES: tuple[str, ...] = ("fused", "similarity", "bm25", "named_speaker", "other_speaker", "question",
                             "words", "session_best", "session_rank")
"""What the model sees of a candidate:

- ``fused``: its fused score (after neighbours and speakers) over the best possible one;
- ``similarity``: the cosine similarity of its vector to the query's;
- ``bm25``: its BM25 score over the best BM25 score of the query (0: no lexical match);
- ``named_speaker`` / ``other_speaker``: said by a person the query names / by someone
  else while the query names someone (both 0 when nobody is named or nobody is recorded);
- ``question``: the turn ends with a question mark (a trailing ``[...]`` note aside);
- ``words``: log(1 + its number of words, split on white space);
- ``session_best``: the best fused score among the candidates of its session;
- ``session_rank``: 1 / its place among the candidates of its session.
"""

DEFAULT_WEIGHTS: dict[str, float] = {
    "bias": -8.4374,
    "fused": 3.5871,
    "similarity": 1.4312,
    "bm25": 1.3427,
    "named_speaker": 0.9215,
    "other_speaker": -0.8413,
    "question": -0.6322,
    "words": 0.963,
    "session_best": 2.4946,
    "session_rank": 0.2875,
}
"""Fitted by ``python -m memory.fit_rerank`` on LoCoMo conv-26, conv-30 and conv-41 (``--c 0.1``)."""

_NOTE = re.compile(r"\s*\[[^\]]*\]\s*$")


@dataclass(frozen=True)
class Candidate:
    """What re-ranking needs to know of one candidate turn."""

    id: int
    text: str
    session_id: str | None
    fused: float
    similarity: float
    bm25: float
    speaker: str | None


def features(candidates: Sequence[Candidate], named: set[str]) -> np.ndarray:
    """The feature matrix (one row per candidate, columns in :data:`FEATURES` order).

    ``candidates`` come best first by fused score; ``named`` holds the speakers the query
    names (empty: none named)."""
    best_bm25 = max((c.bm25 for c in candidates), default=0.0) or 1.0
    session_best: dict[str, float] = {}
    seen: dict[str, int] = {}
    rows = []
    for c in candidates:
        key = c.session_id if c.session_id is not None else f"#{c.id}"
        session_best.setdefault(key, c.fused)
        seen[key] = seen.get(key, 0) + 1
        text = c.text.rstrip()
        if text.endswith("]"):
            text = _NOTE.sub("", text)
        spoken = c.speaker is not None
        rows.append([
            c.fused, c.similarity, c.bm25 / best_bm25,
            float(spoken and c.speaker in named), float(spoken and bool(named) and c.speaker not in named),
            float(text.endswith("?")), math.log1p(len(c.text.split())),
            session_best[key], 1.0 / seen[key],
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)


def rerank(x: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """The model's probability that each row is relevant."""
    w = np.array([float(weights.get(f, 0.0)) for f in FEATURES])
    z = x @ w + float(weights.get("bias", 0.0))
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
                 c: float = 0.1, iterations: int = 50) -> dict[str, float]:
    """L2-regularised logistic regression (Newton's method) on standardised features,
    returned as weights on the raw features (``bias`` included); ``c`` is the inverse
    regularisation strength, as in scikit-learn."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    z = np.hstack([(x - mu) / sd, np.ones((len(y), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], 1.0 / c)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40, 40)))
        grad = z.T @ (sw * (p - y)) + penalty * beta
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    raw = beta[:-1] / sd
    out = {"bias": float(beta[-1] - raw @ mu)}
    out.update({f: float(v) for f, v in zip(FEATURES, raw, strict=True)})
    return out
