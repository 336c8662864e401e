"""The lexical half of hybrid recall: BM25 over SQLite FTS5, safe for any user text.

User text is never passed to ``MATCH`` as is: quotes, ``*``, ``:``, ``^``, ``NEAR`` or a
lone ``AND`` would be FTS5 syntax (and raise). Each word becomes a quoted string joined
with ``OR``, the way BM25 retrieval expects. Common English words are dropped, and so are
words so frequent in the searched namespaces that scoring their rows would cost more than
they tell: BM25 gives a word in half the rows no weight at all, and FTS5 scores every
matching row (about 5-10 microseconds each), so a budget of rows keeps a search fast at
100,000 memories. Names, numbers and rare words - what the lexical search is for - pass.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

__all__ = ["STOPWORDS", "keywords", "match_expression", "namespace_tag", "kind_tag", "search_bm25"]

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t d ll m re ve don doesn didn isn wasn aren weren won wouldn shouldn couldn let lets
    also yes yeah oh ok okay hey hi hello really much many get got go going gonna wanna
    tell know think remember
    """.split()
)

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 32  # bounds the cost of a pasted essay used as a query


def keywords(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The distinct lower-cased words of ``text`` (stopwords dropped unless kept)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word.replace("_", "") == "":
            continue
        if not keep_stopwords and word in STOPWORDS:
            continue
        seen.setdefault(word, None)
    return list(seen)[:_MAX_TERMS]


def namespace_tag(namespace: str) -> str:
    """The token that marks a row's namespace in the FTS ``tags`` column.

    Decimal digits after a fixed prefix: the porter stemmer leaves such tokens alone, so
    the same token is produced when indexing and when querying.
    """
    return "ns" + str(int(namespace[:16], 16)).zfill(20)


def kind_tag(kind: str) -> str:
    return "kind" + kind


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _scope(namespaces: Sequence[str], kinds: Sequence[str] | None) -> str:
    parts = ["tags : (" + " OR ".join(namespace_tag(n) for n in namespaces) + ")"]
    if kinds:
        parts.append("tags : (" + " OR ".join(kind_tag(k) for k in kinds) + ")")
    return " AND ".join(parts)


def match_expression(text: str, namespaces: Sequence[str], kinds: Sequence[str] | None,
                     words: Sequence[str] | None = None) -> str | None:
    """The FTS5 ``MATCH`` expression for ``text`` (or the given ``words``) restricted to
    namespaces and kinds; ``None`` when there is no searchable word."""
    words = keywords(text) if words is None else list(words)
    if not words or not namespaces:  # only common words: the dense search covers those
        return None
    columns = "{text context}"
    return f"{_scope(namespaces, kinds)} AND {columns} : (" + " OR ".join(_quote(w) for w in words) + ")"


def _row_count(conn: sqlite3.Connection, expression: str, cap: int) -> int:
    row = conn.execute("SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)",
                       (expression, cap)).fetchone()
    return int(row[0])


def search_bm25(conn: sqlite3.Connection, text: str, namespaces: Sequence[str], kinds: Sequence[str] | None,
                *, limit: int, size: int, max_rows: int, context_weight: float) -> list[tuple[int, float]]:
    """(row id, BM25 score, higher is better), best first, for the words of ``text``.

    ``size`` is how many rows the namespaces hold: a word in more than half of them is
    skipped (no weight in BM25), and words are taken rarest first while the rows they
    match stay within ``max_rows``.
    """
    words = keywords(text)
    if not words or not namespaces:
        return []
    if size > max_rows:
        counted = []
        for word in words:
            rows = _row_count(conn, match_expression("", namespaces, kinds, [word]) or "", max_rows + 1)
            if rows and rows <= size // 2:
                counted.append((rows, word))
        kept, budget = [], max_rows
        for rows, word in sorted(counted):
            if rows <= budget:
                kept.append(word)
                budget -= rows
        words = kept
    expression = match_expression("", namespaces, kinds, words)
    if expression is None:
        return []
    found = conn.execute(
        f"SELECT rowid, bm25(memories_fts, 1.0, {float(context_weight)!r}, 0.0) AS s FROM memories_fts "
        "WHERE memories_fts MATCH ? ORDER BY s LIMIT ?", (expression, limit))
    return [(int(r), -float(s)) for r, s in found]
