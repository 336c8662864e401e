"""The data a turn carries between stages, and the seams later stages plug into.

A turn runs: normalize -> understand -> route -> recall -> prompt -> generate -> persist.
The :class:`Reply` is what callers get back (and what ``llmos ask --json`` prints).
The protocols here are what the dialogue manager needs from the understanding
classifiers and the memory store; both are passed into the :class:`~agent.Agent`, so a
test can hand it fakes.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

__all__ = [
    "Label",
    "MemoryRef",
    "TokenCounts",
    "ToolRecord",
    "Reply",
    "Understood",
    "Understanding",
    "MemoryBackend",
]


class Label(BaseModel):
    """A classifier's answer: the label and its score (confidence or signed polarity)."""

    label: str
    score: float


class MemoryRef(BaseModel):
    """A memory or knowledge-base passage the turn recalled, with provenance."""

    id: int
    text: str
    score: float
    kind: str
    source: str | None = None


class ToolRecord(BaseModel):
    """One tool call of a turn as it ran: stored with the reply, shown in the TUI's insight
    panel and in ``llmos ask --json``."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str
    """What the model read back: the result as text, or ``error: ...``."""
    ok: bool = True
    ms: float = 0.0
    """How long the tool itself took."""


class TokenCounts(BaseModel):
    prompt: int = 0
    completion: int = 0


class Reply(BaseModel):
    """The result of one turn."""

    text: str
    session_id: str
    user_id: str
    intent: Label | None = None
    sentiment: Label | None = None
    frustration: float | None = None
    skill: str | None = None
    memories: list[MemoryRef] = Field(default_factory=list)
    handoff: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)
    tokens: TokenCounts = Field(default_factory=TokenCounts)
    finish_reason: str = "stop"
    """`stop` (the model finished or hit a stop string), `length` (max_new_tokens) or `cancelled`."""
    tool_calls: list[ToolRecord] = Field(default_factory=list)
    """The tools the model called during the turn, in order, with their results."""


@dataclass
class Understood:
    """What the understand stage learnt about the user's text."""

    vector: Any = None
    """The turn's sentence embedding (numpy float32, unit length), or None without an embedder."""
    intent: Label | None = None
    sentiment: Label | None = None
    frustration: float | None = None
    handoff: bool = False
    """True when the user asked for a human or frustration passed the configured threshold."""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Understanding(Protocol):
    """Intent and sentiment classification on the turn's embedding."""

    def analyze(self, text: str, vector: Any, prior_sentiments: Sequence[float]) -> Understood:
        """Classify one turn. ``prior_sentiments`` are the signed sentiment scores of the
        session's earlier user turns, oldest first (for the frustration signal)."""
        ...


@runtime_checkable
class MemoryBackend(Protocol):
    """What the dialogue manager and its skills use of a memory store (``memory.MemoryStore``
    is one; ``tests/helpers/memory.py`` holds an in-memory fake that is another).

    ``user_id=None`` means the shared knowledge base where a method takes it. Hits and listed
    items have ``id``, ``text``, ``score``, ``kind`` and ``source`` attributes (``created_at``
    too, where known)."""

    def search(self, query: str, k: int = 5, user_id: str | None = None, kinds: Sequence[str] | None = None,
               *, vector: Any = None) -> list[Any]:
        """The ``k`` memories most relevant to ``query`` among the user's own and the shared
        knowledge base, best first."""
        ...

    def add(self, text: str, *, user_id: str, session_id: str | None = None, kind: str = "turn",
            source: str | None = None, vector: Any = None) -> int:
        """Store one memory; return its row id."""
        ...

    def delete(self, ids: Iterable[int], *, user_id: str | None = None) -> int:
        """Delete memories by id (only ``user_id``'s own, when given); return how many went."""
        ...

    def forget(self, user_id: str) -> int:
        """Delete everything of ``user_id``'s; return how many memories went."""
        ...

    def forget_session(self, user_id: str, session_id: str) -> int:
        """Delete the memories that came from one of ``user_id``'s sessions; return how many."""
        ...

    def has_documents(self, user_id: str | None = None) -> bool:
        """Whether any document could ground an answer for ``user_id``: one in the shared
        knowledge base, or one the user attached (``user_id=None``: the shared base only)."""
        ...

    # Last: a method named ``list`` shadows the builtin in the annotations below it.
    def list(self, user_id: str | None, kinds: Sequence[str] | None = None, limit: int = 50,
             offset: int = 0) -> builtins.list[Any]:
        """A user's own memories, most recent first (a listing, so every score is 0)."""
        ...
