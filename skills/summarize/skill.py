"""The built-in ``/summarize`` skill: the session so far, a knowledge-base document, or
pasted text (map-reduce over chunks when it is longer than the model's context).

- ``/summarize`` (or "summarize our conversation"): the session's history.
- ``/summarize guide.md``: the knowledge-base document with that source (or file name).
- ``/summarize <text>``: the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePath
from typing import Any

from agent.errors import SkillError
from skills.base import SkillRequest
from skills.config import SkillsConfig, SummarizeConfig
from skills.summarize.mapreduce import summarize_text

__all__ = ["SummarizeSkill", "transcript_of", "find_document"]

_ASKS_FOR_SESSION = re.compile(r"\b(summari[sz]e|recap|sum up)\b.{0,30}\b(our|this|the)\s+(conversation|chat|session|discussion)\b",
                               re.IGNORECASE)
_SESSION = re.compile(r"^(/\S+)?\s*((the|this|our|my)\s+)?(conversation|session|chat|discussion)"
                      r"(\s+so\s+far)?\W*$", re.IGNORECASE)


def transcript_of(history: Sequence[dict[str, str]]) -> str:
    names = {"user": "User", "assistant": "Assistant"}
    return "\n".join(f"{names.get(m['role'], m['role'].title())}: {m['content'].strip()}"
                     for m in history if m.get("role") in names and m.get("content", "").strip())


def find_document(memory: Any, name: str, user_id: str) -> tuple[str, str] | None:
    """(source, full text) of the knowledge-base document ``name`` names, else None."""
    lister = getattr(memory, "list_memories", None)
    wanted = name.strip().strip("'\"`")
    if not callable(lister) or not wanted or "\n" in wanted or len(wanted) > 300:
        return None
    for owner in (user_id, None):
        try:
            records = lister(owner, kinds=("document",), limit=100_000)
        except Exception:  # a store without per-user documents: try the shared knowledge base
            continue
        parts = [r for r in records if r.source and (r.source == wanted or PurePath(r.source).name == wanted)]
        if parts:
            parts.sort(key=lambda r: (_position(getattr(r, "locator", None)), r.id))
            return parts[0].source, "\n".join(_dedupe_overlap([r.text for r in parts]))
    return None


def _position(locator: str | None) -> int:
    found = re.search(r"\d+", locator or "")
    return int(found.group()) if found else 0


def _dedupe_overlap(texts: list[str]) -> list[str]:
    """Knowledge-base passages overlap (the end of one starts the next): drop the repeat."""
    out: list[str] = []
    for text in texts:
        if out:
            prev = out[-1]
            for size in range(min(len(prev), len(text), 400), 20, -1):
                if prev.endswith(text[:size]):
                    text = text[size:]
                    break
        out.append(text)
    return out


class SummarizeSkill:
    """Summaries (``/summarize``)."""

    name = "summarize"
    description = ("Summarize the conversation so far (/summarize), a knowledge-base document "
                   "(/summarize guide.md) or pasted text (/summarize <text>).")
    intents: tuple[str, ...] = ("summarize", "summary", "tldr")
    command: str | None = "summarize"

    def __init__(self, config: SkillsConfig | None = None) -> None:
        self.config: SummarizeConfig = (config or SkillsConfig()).summarize

    def accepts(self, text: str, *, count_tokens: Callable[[str], int], **_: Any) -> bool:
        """For a turn routed here by its intent (not ``/summarize``): is there something to
        summarize? The conversation ("summarize our chat"), or a text of at least
        ``min_chunk_tokens`` besides the request's first line. Otherwise the turn asks to
        *write* (a summary of a book, of a web page it cannot read), which chat does."""
        clean = text.strip()
        if _SESSION.match(clean) or _ASKS_FOR_SESSION.search(clean):
            return True
        body = clean.partition("\n")[2]
        if not body.strip():  # one line: a request with the text after a colon, or no text
            body = clean.partition(":")[2]
        return count_tokens(body.strip()) >= self.config.min_chunk_tokens

    def target(self, request: SkillRequest) -> tuple[str, str, str]:
        """(what, kind, text): what is being summarised, the prompt kind, and its text."""
        text = request.text.strip()
        asks_for_session = _ASKS_FOR_SESSION.search(text) and request.backend.count_tokens(text) < self.config.min_chunk_tokens
        if not text or text.startswith("/") or _SESSION.match(text) or asks_for_session:
            body = transcript_of(request.history)
            if not body:
                raise SkillError("there is no conversation to summarize yet: say something first, or use "
                                 "/summarize <text> or /summarize <document name>")
            return "the conversation so far", "conversation", body
        if request.memory is not None:
            doc = find_document(request.memory, text, request.user_id)
            if doc is not None:
                return doc[0], "text", doc[1]
        kind = "dialogue" if re.search(r"^\s*#?\w+#?:", text, re.MULTILINE) and text.count("\n") >= 2 else "text"
        return "the text", kind, text

    def run(self, request: SkillRequest) -> Iterator[str]:
        what, kind, text = self.target(request)
        cfg = self.config
        if what == "the text" and request.backend.count_tokens(text) < cfg.min_chunk_tokens:
            yield f"That is already short; nothing to summarize:\n\n{text}"
            return
        progress = getattr(request, "progress", None)
        request.extra["summarize"] = {"target": what, "tokens": request.backend.count_tokens(text)}
        yield from summarize_text(request.backend, text, kind=kind, max_summary_tokens=cfg.max_summary_tokens,
                                  chunk_tokens=cfg.chunk_tokens, should_stop=request.should_stop,
                                  progress=(lambda done, total: progress(done / max(total, 1), f"{done}/{total} parts"))
                                  if callable(progress) else None)
