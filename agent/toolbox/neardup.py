"""Near-duplicate detection: MinHash signatures with locality-sensitive hashing.

Each text becomes a set of word 3-grams (shingles). Two texts whose shingle sets have a
Jaccard similarity at or above the threshold are near-duplicates. MinHash with 64
permutations in 16 bands of 4 rows makes pairs above ~0.5 similarity collide in some
band with high probability (a pair at 0.8 collides with probability > 0.999), and every
candidate pair is then checked exactly, so there are no false positives.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

__all__ = ["near_duplicates", "shingles"]

_PRIME = 4294967291  # the largest prime below 2**32
_PERMUTATIONS = 64
_BANDS = 16
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 3) -> set[int]:
    """32-bit hashes of the word n-grams of ``text`` (lower-cased); short texts give one gram."""
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))] if words else []
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") for g in grams}


def _signatures(sets: Sequence[set[int]]) -> list[tuple[int, ...]]:
    import numpy as np

    rng = np.random.default_rng(1234)  # fixed: signatures are comparable across runs
    # a, b < 2**31 and x < 2**32 keep a*x+b below 2**64: no overflow in uint64.
    a = rng.integers(1, 1 << 31, size=_PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, 1 << 31, size=_PERMUTATIONS, dtype=np.uint64)
    out: list[tuple[int, ...]] = []
    for items in sets:
        if not items:
            out.append(())
            continue
        x = np.fromiter(items, dtype=np.uint64, count=len(items))
        values = (np.outer(a, x) + b[:, None]) % np.uint64(_PRIME)
        out.append(tuple(int(v) for v in values.min(axis=1)))
    return out


def near_duplicates(texts: Sequence[str], threshold: float = 0.85) -> dict[int, int]:
    """Map the index of each near-duplicate text to the earlier text it duplicates."""
    sets = [shingles(t) for t in texts]
    sigs = _signatures(sets)
    rows = _PERMUTATIONS // _BANDS
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    duplicate_of: dict[int, int] = {}
    for i, sig in enumerate(sigs):
        if not sig:
            continue
        candidates: set[int] = set()
        for band in range(_BANDS):
            key = (band, sig[band * rows:(band + 1) * rows])
            candidates.update(buckets[key])
            buckets[key].append(i)
        for j in sorted(candidates):
            if j in duplicate_of:
                continue  # compare against the kept representative only
            inter = len(sets[i] & sets[j])
            if inter / (len(sets[i]) + len(sets[j]) - inter) >= threshold:
                duplicate_of[i] = j
                break
    return duplicate_of
