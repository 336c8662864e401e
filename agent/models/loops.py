"""Ending a reply that has fallen into a loop.

Small models decoding greedily sometimes repeat one phrase until ``max_new_tokens`` ("I'm
sorry. I'm sorry. I'm sorry. ..."): 35% of the 135M model's IFEval replies ran to the
256-token cap, most of them in such a loop. :class:`RepetitionGuard` watches the token ids
and says when the tail is the same block over and over, so the reply ends there (after the
block's last repeat) instead of at the cap.
"""

from __future__ import annotations

__all__ = ["RepetitionGuard"]


class RepetitionGuard:
    """Says when the last tokens are one block repeated: ``repeats`` times for blocks of
    ``long_period`` tokens or more, ``repeats + 1`` times for shorter ones, and always at
    least ``min_span`` tokens in all (a list of short repeated marks is not a loop)."""

    def __init__(self, *, max_period: int = 64, repeats: int = 3, long_period: int = 8, min_span: int = 24) -> None:
        self.max_period, self.repeats, self.long_period, self.min_span = max_period, repeats, long_period, min_span
        self.tokens: list[int] = []
        self.period: int | None = None
        """The block length of the loop once found."""

    def looping(self, token: int) -> bool:
        """Add ``token``; True when the tail now is a loop."""
        t = self.tokens
        t.append(token)
        n = len(t)
        for p in range(1, min(self.max_period, n // self.repeats) + 1):
            if t[-1] != t[-1 - p]:
                continue  # cheap filter: a loop of period p repeats the last token p back
            reps = self.repeats if p >= self.long_period else self.repeats + 1
            span = max(reps * p, self.min_span)
            if span > n or span % p and span // p < reps:
                continue
            span = -(-span // p) * p  # whole blocks
            if span > n:
                continue
            tail = t[n - span:]
            if tail == t[n - span + p:] + tail[-p:]:  # shifting by one block changes nothing
                self.period = p
                return True
        return False
