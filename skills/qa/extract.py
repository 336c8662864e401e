"""Extractive answering: the best-supported span of the passages, no model call.

Works the same with a 135M model or none: pick the sentence that shares the most
(idf-weighted) question words, then the span inside it that matches the question's answer
type (a number for "how many", a name for "who") and sits closest to the matched words.
Also :func:`ground`: find the passage span that best matches a generated answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from skills.text import STOPWORDS, content_words, sentence_spans, stem

__all__ = ["Span", "best_span", "ground", "answer_type"]

_TOKEN = re.compile(r"\w+(?:[-'.,]\d+)*(?:[-']\w+)*|[^\w\s]", re.UNICODE)
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"}
_BREAK = set(",;:()[]\"“”")


@dataclass(frozen=True)
class Span:
    """A piece of one passage: ``passage`` index, character offsets, text and a score."""

    passage: int
    start: int
    end: int
    text: str
    score: float


def answer_type(question: str) -> str:
    """``number``, ``date``, ``person``, ``place`` or ``thing``, from the question words."""
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall|high)\b|\bwhat (percentage|percent|number)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|century|decade)\b|\bwhich (year|century)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhat (city|country|state|place)\b", q):
        return "place"
    return "thing"


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]


def _type_bonus(kind: str, toks: Sequence[str]) -> float:
    has_digit = any(any(c.isdigit() for c in t) for t in toks)
    capital = sum(1 for t in toks if t[:1].isupper())
    if kind == "number":
        return 2.0 if has_digit else -1.0
    if kind == "date":
        return 2.0 if has_digit or any(t.lower() in _MONTHS for t in toks) else -1.0
    if kind in ("person", "place"):
        return 1.5 * capital / len(toks) if capital else -0.5
    return 0.0


def _sentence_scores(question: str, passages: Sequence[str]) -> list[tuple[float, int, int, int]]:
    q = set(content_words(question))
    sentences = [(i, s, e) for i, p in enumerate(passages) for s, e in sentence_spans(p)]
    bags = [set(content_words(passages[i][s:e])) for i, s, e in sentences]
    df = Counter(w for bag in bags for w in bag & q)
    n = max(len(bags), 1)
    scored = []
    for (i, s, e), bag in zip(sentences, bags, strict=False):
        score = sum(math.log(1 + n / (1 + df[w])) for w in bag & q)
        scored.append((score - 0.05 * i, i, s, e))  # earlier (better-retrieved) passages win ties
    scored.sort(key=lambda t: -t[0])
    return scored


def best_span(question: str, passages: Sequence[str], *, sentences: int = 3) -> Span | None:
    """The most likely answer span among ``passages`` (best first), or None if empty."""
    scored = _sentence_scores(question, passages)
    if not scored:
        return None
    kind = answer_type(question)
    qwords = {stem(w) for w in re.findall(r"\w+", question)}
    best: Span | None = None
    for rank, (sent_score, i, s, e) in enumerate(scored[:sentences]):
        toks = _tokens(passages[i][s:e])
        matched = [k for k, (_, _, t) in enumerate(toks) if stem(t) in qwords and t.lower() not in STOPWORDS]
        for a, b in _candidates(toks, qwords):
            words_ = [t for _, _, t in toks[a:b]]
            dist = min((min(abs(m - a), abs(m - (b - 1))) for m in matched), default=8)
            score = (sent_score - 0.5 * rank + _type_bonus(kind, words_) - 0.15 * dist - 0.1 * max(0, b - a - 3)
                     - _cut_penalty(toks, a, b))
            if best is None or score > best.score:
                start, end = s + toks[a][0], s + toks[b - 1][1]
                best = Span(i, start, end, passages[i][start:end], score)
    if best is None:
        i, s, e = scored[0][1:]
        return Span(i, s, e, passages[i][s:e], scored[0][0])
    return best


def _cut_penalty(toks: Sequence[tuple[int, int, str]], a: int, b: int) -> float:
    """A span that cuts a name ("Larry" of "Larry Page") or a number in two is worse."""
    def joined(x: int, y: int) -> bool:
        if not (0 <= x < len(toks) and 0 <= y < len(toks)):
            return False
        tx, ty = toks[x][2], toks[y][2]
        return (tx[:1].isupper() and ty[:1].isupper()) or (tx[:1].isdigit() and ty[:1].isdigit())

    return 0.8 * (joined(a - 1, a) + joined(b - 1, b))


def _candidates(toks: Sequence[tuple[int, int, str]], qwords: set[str]) -> list[tuple[int, int]]:
    """Runs of tokens that are not question words, cut at punctuation; trimmed of stopwords;
    every sub-run up to 6 tokens long."""
    out: list[tuple[int, int]] = []
    run: list[int] = []
    for k, (_, _, t) in enumerate([*toks, (0, 0, ",")]):
        if t in _BREAK or t in ".!?" or stem(t) in qwords:
            if run:
                out += _subruns(run[0], run[-1] + 1, toks)
            run = []
        else:
            run.append(k)
    return out


def _subruns(a: int, b: int, toks: Sequence[tuple[int, int, str]]) -> list[tuple[int, int]]:
    spans = []
    for x in range(a, b):
        for y in range(x + 1, min(b, x + 6) + 1):
            first, last = toks[x][2].lower(), toks[y - 1][2].lower()
            if first in STOPWORDS or last in STOPWORDS:
                continue
            spans.append((x, y))
    return spans


def ground(answer: str, passages: Sequence[str], *, question: str = "", min_f1: float = 0.5) -> Span | None:
    """The passage span with the best token F1 against ``answer`` (at least ``min_f1``):
    a generated answer restated in the passage's own words, so it can be cited. Words of
    the question ("It *takes* 3 days") and stopwords are not part of the answer."""
    asked = {stem(w) for w in re.findall(r"\w+", question)}
    every = [t.lower() for t in re.findall(r"\w+", answer)]
    target = [t for t in every if t not in STOPWORDS and stem(t) not in asked] or \
        [t for t in every if t not in ("a", "an", "the")]
    if not target:
        return None
    want = Counter(target)
    best: Span | None = None
    limit = len(target) + 4
    for i, passage in enumerate(passages):
        toks = [(s, e, t) for s, e, t in _tokens(passage) if t[:1].isalnum()]
        for x in range(len(toks)):
            if toks[x][2].lower() not in want:
                continue  # a best span starts on an answer word
            got: Counter[str] = Counter()
            for y in range(x, min(len(toks), x + limit)):
                got[toks[y][2].lower()] += 1
                common = sum((got & want).values())
                if not common:
                    continue
                p, r = common / (y - x + 1), common / len(target)
                f1 = 2 * p * r / (p + r)
                if f1 >= min_f1 and (best is None or f1 > best.score):
                    best = Span(i, toks[x][0], toks[y][1], passage[toks[x][0]:toks[y][1]], f1)
    return best
