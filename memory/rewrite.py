"""Query rewriting for the lexical search: say what an answer would contain.

A question is worded unlike its answer: "When did you move to Berlin?" shares "Berlin"
and "move" with "I moved to Berlin in May", not "When", "did" or "you". The rewrite keeps
names, numbers and content words, maps question forms onto the forms answers use
("your" -> the speaker's "my" is a stopword either way) and adds the words answers to a
kind of question tend to hold (a "when" question is answered with a date).
"""

from __future__ import annotations

import re

from memory.lexical import keywords

__all__ = ["rewrite_query"]

# Words that answers to a kind of question tend to contain; BM25 only rewards the ones a
# memory really holds, so a wrong guess costs little.
_EXPANSIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*(when|what (year|month|day|date|time))\b", re.I),
     "yesterday today tomorrow week weekend month year ago last next"),
    (re.compile(r"^\s*where\b", re.I), "at in from near"),
    (re.compile(r"^\s*how (many|much|long|often)\b", re.I), "times years months weeks days"),
)

_QUESTION_SCAFFOLD = re.compile(
    r"^\s*(what|when|where|who|whom|whose|which|why|how( many| much| long| often)?)\s+"
    r"((is|are|was|were|do|does|did|has|have|had|can|could|would|will|should)\s+)?",
    re.I,
)


def rewrite_query(text: str) -> str:
    """The text to match lexically for ``text`` (unchanged when it is not a question)."""
    extra = ""
    for pattern, words in _EXPANSIONS:
        if pattern.search(text):
            extra = words
            break
    core = _QUESTION_SCAFFOLD.sub("", text, count=1)
    # possessives: "Caroline's" should match "Caroline"
    core = re.sub(r"(\w)['\u2019]s\b", r"\1", core)
    terms = keywords(core)
    return " ".join(terms + ([extra] if extra else []))
