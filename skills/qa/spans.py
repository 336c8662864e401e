"""Candidate answer spans inside one sentence, and how answer-like each one is.

No model and no tagger: a span is scored on the signals that decide most SQuAD-style
answers: the kind of thing asked for (a number, a date, a name), whether the span looks
like a noun phrase (names, numbers, nouns) rather than a verb or an adverb, how close it
sits to the words it shares with the question, and whether it is a whole phrase (between
punctuation or question words) rather than a fragment of one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from skills.text import STOPWORDS, stem

__all__ = ["answer_type", "Token", "candidates", "span_features", "span_score", "subject_asked", "FEATURES", "WEIGHTS"]

Token = tuple[int, int, str]

_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"}
_BREAK = set(",;:()[]\"“”")
# Lower-case words that are rarely an answer on their own: auxiliaries, common verbs and
# adverbs of the encyclopedic register.
_VERBISH = frozenset("""
became become becomes began begin made make makes used use uses called call calls known include includes included
including said say says took take takes gave give gives led lead leads came come comes went go goes won win wins
held hold holds found find finds began also however although though still even later often usually already
first second third early late many much several various because since while whereas thus hence
""".split())
# Head nouns of "what X" / "which X" questions whose answers are names.
_NAMED = frozenset("""
name names city cities country countries state states team teams company companies group groups organization
band language languages university college school church party river mountain island nation empire dynasty
king queen president emperor ruler network station channel newspaper magazine book film movie album song
player coach club league award prize ship brand program programme religion tribe region province county
""".split())


def answer_type(question: str) -> str:
    """``number``, ``date``, ``person``, ``place``, ``named`` (a name of a thing) or ``thing``."""
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall|high|fast)\b|\bwhat (percentage|percent|number|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|century|decade|time)\b|\bwhich (year|century)\b|\bwhat period\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "person"
    if re.search(r"\bwhere\b|\b(what|which) (city|country|state|place|town|continent|region)\b", q):
        return "place"
    head = re.search(r"\b(?:what|which)\s+(\w+)(?:\s+of\s+(\w+))?", q)
    if head:
        noun = head.group(2) if head.group(1) in ("kind", "type", "sort") and head.group(2) else head.group(1)
        if noun in _NAMED or stem(noun) in _NAMED:
            return "named"
    if re.search(r"\bname[ds]?\b", q):
        return "named"
    return "thing"


def candidates(toks: Sequence[Token], qwords: set[str]) -> list[tuple[int, int, bool]]:
    """``(start, end, whole)`` token ranges: the runs between punctuation and question content
    words, and every sub-run up to 6 tokens, none starting or ending on a stopword. ``whole``
    marks the run itself, trimmed of edge stopwords."""
    out: list[tuple[int, int, bool]] = []
    run: list[int] = []
    for k, (_, _, t) in enumerate([*toks, (0, 0, ",")]):
        low = t.lower()
        if t in _BREAK or t in ".!?" or (low not in STOPWORDS and stem(t) in qwords):
            if run:
                out += _subruns(run[0], run[-1] + 1, toks)
            run = []
        else:
            run.append(k)
    return out


def _subruns(a: int, b: int, toks: Sequence[Token]) -> list[tuple[int, int, bool]]:
    def edge(k: int) -> bool:
        return toks[k][2].lower() in STOPWORDS

    lo, hi = a, b
    while lo < hi and edge(lo):
        lo += 1
    while hi > lo and edge(hi - 1):
        hi -= 1
    core = lo  # the phrase after a leading verb: "Rotterdam" of "located in Rotterdam"
    while core < hi and (edge(core) or _looks_verbish(toks[core][2])):
        core += 1
    spans = []
    for x in range(lo, hi):
        for y in range(x + 1, min(hi, x + 6) + 1):
            if not edge(x) and not edge(y - 1):
                spans.append((x, y, x in (lo, core) and y == hi))
    if hi - lo > 6:
        spans.append((lo, hi, True))
    return spans


def _looks_verbish(tok: str) -> bool:
    low = tok.lower()
    if not tok.isalpha() or tok[:1].isupper():
        return False
    return low in _VERBISH or low.endswith(("ed", "ing", "ly"))


FEATURES = ("type", "proper", "whole", "verbish", "distance", "long", "bare_word", "cut", "side", "local")
# Hand-set, then adjusted by a coarse search on half of the SQuAD dev articles (the other
# half checks it; docs/skills.md has both figures).
WEIGHTS = (0.85, 0.3, 1.0, -1.3, -0.12, -0.1, -0.85, -0.2, 0.3, 0.3)


def span_features(kind: str, toks: Sequence[Token], a: int, b: int, whole: bool, matched: Sequence[int],
                  subject_asked: bool, asked: int = 1) -> tuple[float, ...]:
    """The signals :data:`FEATURES` names, for tokens ``a:b`` of a sentence."""
    words = [t for _, _, t in toks[a:b]]
    n = len(words)
    digits = any(any(c.isdigit() for c in t) for t in words)
    proper = sum(1 for k in range(a, b) if toks[k][2][:1].isupper() and k > 0) / n
    verbish = (_looks_verbish(words[0]) + _looks_verbish(words[-1])) / (1 if n > 1 else 2)
    left = min((a - m for m in matched if m < a), default=99)
    right = min((m - b + 1 for m in matched if m >= b), default=99)
    # "Who founded X?" asks for the subject (before the matched words in a sentence);
    # "What did X found?" for an object (after them).
    side = float(right < 99) if subject_asked else float(left < 99)
    # the share of the question's words that sit within a few tokens of the span
    near = {stem(toks[m][2]) for m in matched if a - _WINDOW <= m < a or b <= m < b + _WINDOW}
    typed = _type_score(kind, words, digits, proper)
    # a whole phrase is the likely answer, unless it only holds the number or date asked for
    whole = whole and (kind not in ("number", "date") or typed > 1.0)
    return (typed, proper, float(whole), verbish, float(min(left, right, 12)), float(max(0, n - 3)),
            float(n == 1 and not (digits or proper)), _cut_penalty(toks, a, b), side, len(near) / max(asked, 1))


def span_score(features: Sequence[float]) -> float:
    """How answer-like a span is: its features weighted by :data:`WEIGHTS`."""
    return sum(w * f for w, f in zip(WEIGHTS, features, strict=True))


def subject_asked(question: str) -> bool:
    """True when the question word is the subject ("Who won?"), not an object ("What did he win?")."""
    toks = question.lower().split()
    return len(toks) < 2 or toks[1] not in _AUX


_WINDOW = 6
_AUX = frozenset("did does do was were is are has have had can could would will should may might".split())


def _type_score(kind: str, words: Sequence[str], digits: bool, proper: float) -> float:
    if kind in ("number", "date"):
        fits = _is_number if kind == "number" else _is_date
        # "300 acres" and "October 1518" are answers; "river in 1911" holds one
        edge = fits(words[0]) or (kind == "date" and len(words) <= 2 and fits(words[-1]))
        return 2.5 if edge else 1.0 if any(fits(w) for w in words) else -1.0
    if kind in ("person", "place", "named"):
        return 1.5 * proper if proper else -0.5
    return 0.0


def _is_number(word: str) -> bool:
    return any(c.isdigit() for c in word) or word.lower() in _NUMBER_WORDS


def _is_date(word: str) -> bool:
    return any(c.isdigit() for c in word) or word.lower() in _MONTHS


_NUMBER_WORDS = frozenset("""one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty
hundred hundreds thousand thousands million millions billion billions dozen dozens half twice""".split())


def _cut_penalty(toks: Sequence[Token], a: int, b: int) -> float:
    """A span that cuts a name ("Larry" of "Larry Page") or a number in two is worse."""
    def joined(x: int, y: int) -> bool:
        if not (0 <= x < len(toks) and 0 <= y < len(toks)):
            return False
        tx, ty = toks[x][2], toks[y][2]
        return (tx[:1].isupper() and ty[:1].isupper()) or (tx[:1].isdigit() and ty[:1].isdigit())

    return float(joined(a - 1, a) + joined(b - 1, b))
