"""The conversation-level frustration signal: a decaying average of the user's sentiment.

One angry message in a friendly conversation is a bad moment; several in a row are a user
about to leave. Weighting the session's signed sentiment scores (newest weight 1, each older
turn ``decay`` times the next) and reading the negative side of the average gives a number in
[0, 1] that rises with sustained negativity and falls when the user calms down.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["frustration_level"]


def frustration_level(scores: Sequence[float], decay: float = 0.6) -> float:
    """Frustration in [0, 1] from signed sentiment scores in [-1, 1], oldest first.

    ``decay`` in (0, 1]: 1.0 is a plain mean over the session; smaller values let recent
    turns dominate. Positive averages give 0 (a happy user is not frustrated).
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    total = weight_sum = 0.0
    weight = 1.0
    for score in reversed(scores):
        total += weight * max(-1.0, min(1.0, float(score)))
        weight_sum += weight
        weight *= decay
        if weight < 1e-6:
            break  # older turns no longer move the figure
    if weight_sum == 0.0:
        return 0.0
    return max(0.0, min(1.0, -total / weight_sum))
