"""Small text tools the built-in skills share: sentences, words, model size, chat calls."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from agent.options import GenerationOptions

__all__ = ["STOPWORDS", "sentence_spans", "words", "content_words", "stem", "model_parameters", "ask_model",
           "closed_fence", "first_line_done"]

STOPWORDS = frozenset("""
a an the and or but if of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why how all any both
each few more most other some such no nor not only own same so than too very s t can will just don should now
is are was were be been being have has had having do does did doing i me my myself we our ours you your he him
his she her it its they them their what which who whom whose this that these those am would could also as
""".split())

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*#\d])")
_WORD = re.compile(r"\w+(?:[-'.]\w+)*", re.UNICODE)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a light splitter: punctuation + capital)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if text[start:end].strip():
            spans.append(_trim(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_trim(text, start, len(text)))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match "founded"/"founding"/"founds"."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def content_words(text: str) -> list[str]:
    return [stem(w) for w in words(text) if w.lower() not in STOPWORDS]


def model_parameters(backend: Any) -> int | None:
    """Parameter count of a local model behind ``backend`` (None when unknown, e.g. a server)."""
    model = getattr(getattr(backend, "model", None), "model", None)
    counter = getattr(model, "num_parameters", None)
    if callable(counter):
        try:
            return int(counter())
        except Exception:  # an exotic model class: treat the size as unknown
            return None
    return None


def ask_model(backend: Any, system: str, user: str, *, max_new_tokens: int, stop: Sequence[str] = (),
              history: Sequence[dict[str, str]] = (), until: Callable[[str], bool] | None = None) -> str:
    """One greedy chat call, joined: skills want deterministic, reproducible answers.

    ``until(text_so_far)`` ends generation early once it is true (e.g. a code block has
    closed): small models ramble on after the part a skill needs, and tokens cost time.
    """
    options = GenerationOptions(temperature=0.0, max_new_tokens=max_new_tokens, repetition_penalty=1.1,
                                stop=tuple(stop))
    messages = [{"role": "system", "content": system}, *history, {"role": "user", "content": user}]
    stream = backend.stream(messages, options)
    if until is None:
        return str(stream.text())
    text = ""
    try:
        for piece in stream:
            text += piece
            if until(text):
                break
    finally:
        # Stop generating now, and free the model for the skill's next call (a stream left
        # half-read would keep it busy).
        close = getattr(stream, "close", None) or getattr(stream, "cancel", None)
        if callable(close):
            close()
    return text


def closed_fence(text: str) -> bool:
    """True once ``text`` holds a complete fenced code block."""
    return text.count("```") >= 2


def first_line_done(text: str) -> bool:
    """True once ``text`` has a non-empty line followed by a line break."""
    stripped = text.lstrip()
    return "\n" in stripped and bool(stripped.split("\n", 1)[0].strip())
