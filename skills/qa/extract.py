"""Extractive answering: the best-supported span of the passages, no model call.

Works the same with a 135M model or none: rank the sentences by the (idf-weighted)
question words they share, then score the candidate spans of the best few
(:mod:`skills.qa.spans`: answer type, noun-phrase shape, closeness to the question words)
on top of their sentence's score. Also :func:`ground`: find the passage span that best
matches a generated answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from skills.qa.spans import answer_type, candidates, span_features, span_score, subject_asked
from skills.text import STOPWORDS, content_words, sentence_spans, stem

__all__ = ["Span", "best_span", "ground", "answer_type"]

_TOKEN = re.compile(r"\w+(?:[-'.,]\d+)*(?:[-']\w+)*|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Span:
    """A piece of one passage: ``passage`` index, character offsets, text and a score."""

    passage: int
    start: int
    end: int
    text: str
    score: float


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]


def _sentence_scores(question: str, passages: Sequence[str]) -> list[tuple[float, int, int, int]]:
    q = set(content_words(question))
    sentences = [(i, s, e) for i, p in enumerate(passages) for s, e in sentence_spans(p)]
    bags = [set(content_words(passages[i][s:e])) for i, s, e in sentences]
    df = Counter(w for bag in bags for w in bag & q)
    n = max(len(bags), 1)
    scored = []
    for (i, s, e), bag in zip(sentences, bags, strict=False):
        score = sum(math.log(1 + n / (1 + df[w])) for w in bag & q)
        scored.append((score - 0.6 * i, i, s, e))  # better-retrieved passages are more likely right
    scored.sort(key=lambda t: -t[0])
    return scored


def best_span(question: str, passages: Sequence[str], *, sentences: int = 3) -> Span | None:
    """The most likely answer span among ``passages`` (best first), or None if empty."""
    scored = _sentence_scores(question, passages)
    if not scored:
        return None
    kind, subject = answer_type(question), subject_asked(question)
    qwords = {stem(w) for w in re.findall(r"\w+", question) if w.lower() not in STOPWORDS}
    best: Span | None = None
    for rank, (sent_score, i, s, e) in enumerate(scored[:sentences]):
        toks = _tokens(passages[i][s:e])
        matched = [k for k, (_, _, t) in enumerate(toks) if t.lower() not in STOPWORDS and stem(t) in qwords]
        for a, b, whole in candidates(toks, qwords):
            features = span_features(kind, toks, a, b, whole, matched, subject, len(qwords))
            score = sent_score - 0.65 * rank + span_score(features)
            if best is None or score > best.score:
                start, end = s + toks[a][0], s + toks[b - 1][1]
                best = Span(i, start, end, passages[i][start:end], score)
    if best is None:
        i, s, e = scored[0][1:]
        return Span(i, s, e, passages[i][s:e], scored[0][0])
    return best


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
