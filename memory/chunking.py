"""Cut documents into overlapping passages on sentence boundaries.

A passage is what gets embedded and recalled, so it should hold whole sentences and fit
the embedder (all-MiniLM-L6-v2 reads ~256 word pieces, roughly 1,000 characters). The end
of each passage is repeated at the start of the next, so a fact that straddles a cut is
whole in one of them. Character offsets are kept for citations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Chunk", "sentence_spans", "chunk_text"]

# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space, or at a blank
# line; a line that starts a list item or a heading starts a new unit too.
_BOUNDARY = re.compile(
    r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+"
    r"|\n\s*\n+"
    r"|\n(?=\s*(?:[-*+\u2022]\s|\d+[.)]\s|#{1,6}\s))"
)


@dataclass(frozen=True)
class Chunk:
    """A passage: its text and where it lies in the source text (``start``..``end``)."""

    text: str
    start: int
    end: int


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence-like unit, whitespace trimmed, empty ones dropped."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _split_long(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """A unit longer than ``size`` (a table, a run-on line) is cut at whitespace."""
    s, e = span
    out = []
    while e - s > size:
        cut = text.rfind(" ", s + size // 2, s + size)
        cut = cut if cut > s else s + size
        out.append((s, cut))
        s = cut
        while s < e and text[s].isspace():
            s += 1
    if e > s:
        out.append((s, e))
    return out


def chunk_text(text: str, *, size: int = 800, overlap: int = 160) -> list[Chunk]:
    """Passages of about ``size`` characters made of whole sentences, each starting with
    the last sentences (up to ``overlap`` characters) of the one before."""
    if size < 1:
        raise ValueError("size must be positive")
    units = [piece for span in sentence_spans(text) for piece in _split_long(text, span, size)]
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= size:
            j += 1
        start, end = units[i][0], units[j][1]
        chunks.append(Chunk(text[start:end], start, end))
        if j + 1 >= len(units):
            break
        # the next passage restarts at the latest sentences that fit in the overlap, but
        # always moves forward by at least one unit
        nxt = j + 1
        while nxt - 1 > i and end - units[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt
    return chunks
