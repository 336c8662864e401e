"""Safe FTS5 queries from arbitrary user text.

User text is never passed to ``MATCH`` as is: quotes, ``*``, ``:``, ``^``, ``NEAR`` or a
lone ``AND`` would be FTS5 syntax (and raise). Each word becomes a quoted string joined
with ``OR``, the way BM25 retrieval expects; the common English words are dropped because
they match nearly every row and only cost time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["STOPWORDS", "keywords", "match_expression", "namespace_tag", "kind_tag"]

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


def match_expression(text: str, namespaces: Sequence[str], kinds: Sequence[str] | None) -> str | None:
    """The FTS5 ``MATCH`` expression for ``text`` restricted to namespaces and kinds.

    Returns ``None`` when the text has no searchable word (nothing to match lexically).
    """
    words = keywords(text)
    if not words or not namespaces:  # only common words: the dense search covers those
        return None
    parts = ["tags : (" + " OR ".join(namespace_tag(n) for n in namespaces) + ")"]
    if kinds:
        parts.append("tags : (" + " OR ".join(kind_tag(k) for k in kinds) + ")")
    parts.append("text : (" + " OR ".join(_quote(w) for w in words) + ")")
    return " AND ".join(parts)
