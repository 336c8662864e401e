"""What the memory store holds and returns: records, hits, new items, namespaces.

Every row belongs to exactly one *namespace*: a user's own memories (turns, facts,
per-user documents) or the agent's shared knowledge base. Namespaces are the unit of
isolation: each has its own vector index, and every query filters on them in SQL too.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.errors import InputError

__all__ = [
    "KINDS",
    "SHARED_NAMESPACE",
    "MemoryRecord",
    "Hit",
    "MemoryItem",
    "content_hash",
    "namespace_for",
    "check_kinds",
]

KINDS: tuple[str, ...] = ("turn", "fact", "document")
"""What a memory is: something a user said, a fact about them, or a document passage."""

SHARED_NAMESPACE = "shared"
"""The namespace of knowledge-base documents visible to every user of an agent."""


def namespace_for(user_id: str | None) -> str:
    """The namespace id (a hex digest, safe in file names) of a user, or of the shared KB."""
    key = SHARED_NAMESPACE if user_id is None else f"user:{user_id}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def content_hash(text: str) -> str:
    """Hash of the text as embedded: identical text is embedded once and stored once."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()


def check_kinds(kinds: Any) -> tuple[str, ...] | None:
    """Validate a ``kinds`` filter; ``None`` means every kind."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = (kinds,)
    out = tuple(dict.fromkeys(kinds))
    bad = [k for k in out if k not in KINDS]
    if bad or not out:
        raise InputError(f"unknown memory kind(s) {bad or out!r}: use any of {', '.join(KINDS)}")
    return out


@dataclass(frozen=True)
class MemoryRecord:
    """One stored memory, as SQLite holds it."""

    id: int
    text: str
    kind: str
    user_id: str | None
    """``None`` for the shared knowledge base."""
    session_id: str | None = None
    source: str | None = None
    """Where it came from: a file path for documents, a dialogue id, ... (for citations)."""
    locator: str | None = None
    """Position inside ``source`` (``page 3``, ``chars 120-980``), for citations."""
    created_at: float = 0.0
    """Unix time the memory was first stored (or when it happened, if the caller knows)."""
    updated_at: float = 0.0
    """Unix time it was last stored again (identical text is stored once)."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def citation(self) -> str | None:
        """``source`` with its position, e.g. ``guide.pdf (page 3)``."""
        if self.source is None:
            return None
        return f"{self.source} ({self.locator})" if self.locator else self.source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Hit(MemoryRecord):
    """A search result: the record plus how it was found.

    ``score`` is the fused relevance in ``[0, 1]`` (1: ranked first by every signal);
    ``similarity`` is the cosine similarity of the dense match (``None`` when only the
    lexical search found it); ``bm25`` is the lexical score (higher is better, ``None``
    when only the dense search found it).
    """

    score: float = 0.0
    similarity: float | None = None
    bm25: float | None = None


@dataclass(frozen=True)
class MemoryItem:
    """A memory to add in :meth:`MemoryStore.add_many`; unset fields take the call's defaults."""

    text: str
    kind: str | None = None
    session_id: str | None = None
    source: str | None = None
    locator: str | None = None
    created_at: float | None = None
    meta: dict[str, Any] | None = None
    context: str | None = None
    """Words that help find this memory without being part of it (weighted lower in the
    lexical search, never shown); by default a turn's context is its session neighbours."""
