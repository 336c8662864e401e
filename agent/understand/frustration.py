"""The conversation-level frustration signal: a decaying average of the user's sentiment.

One angry message in a friendly conversation is a bad moment; several in a row are a user
about to leave. Weighting the session's signed sentiment scores (newest weight 1, each older
turn ``decay`` times the next) and reading the negative side of the average gives a number in
[0, 1] that rises with sustained negativity and falls when the user calms down.

A turn the sentiment head labels neutral (a score inside the neutral band: "what happens if
my parcel is late?" at -0.1) counts as 0, not as a little negative: a user asking plain
questions after one angry message is calming down, and their questions should dilute the
anger, not add to it. Turns labelled negative or positive count with their full score, so
two clearly annoyed messages still add up to a handoff.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["frustration_level", "polarity_beyond_band"]


def polarity_beyond_band(score: float, neutral_band: float = 0.0) -> float:
    """``score`` clipped to [-1, 1], or 0 inside ``(-neutral_band, neutral_band)``, where the
    sentiment head labels the turn neutral."""
    score = max(-1.0, min(1.0, float(score)))
    return 0.0 if abs(score) < neutral_band else score


def frustration_level(scores: Sequence[float], decay: float = 0.6, *, neutral_band: float = 0.0) -> float:
    """Frustration in [0, 1] from signed sentiment scores in [-1, 1], oldest first.

    ``decay`` in (0, 1]: 1.0 is a plain mean over the session; smaller values let recent
    turns dominate. Positive averages give 0 (a happy user is not frustrated).
    ``neutral_band`` in [0, 1): scores inside it count as neutral (0), see the module doc.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    if not 0.0 <= neutral_band < 1.0:
        raise ValueError(f"neutral_band must be in [0, 1), got {neutral_band}")
    total = weight_sum = 0.0
    weight = 1.0
    for score in reversed(scores):
        total += weight * polarity_beyond_band(score, neutral_band)
        weight_sum += weight
        weight *= decay
        if weight < 1e-6:
            break  # older turns no longer move the figure
    if weight_sum == 0.0:
        return 0.0
    return max(0.0, min(1.0, -total / weight_sum))
