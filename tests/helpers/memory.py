"""An in-memory stand-in for the memory store, for tests of the dialogue manager and skills.

:class:`FakeMemory` implements :class:`agent.turn.MemoryBackend` (the whole seam the agent
uses) with plain lists and word-overlap scoring: no SQLite, FAISS or embedder. That the fake
and ``memory.MemoryStore`` both satisfy the protocol is checked by mypy (``_conforms`` below,
``make lint``) and by ``tests/agent/test_memory_seam.py``.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.turn import MemoryBackend
    from memory.store import MemoryStore

__all__ = ["FakeMemory", "FakeHit"]


@dataclass
class FakeHit:
    id: int
    text: str
    kind: str
    user_id: str | None
    session_id: str | None = None
    source: str | None = None
    score: float = 0.0
    created_at: float = field(default_factory=time.time)


def _words(text: str) -> set[str]:
    """Content words: lower case, punctuation stripped, longer than three letters."""
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if len(w) > 3}


class FakeMemory:
    """Memories in a list; ``user_id=None`` is the shared knowledge base. A search scores a
    memory by the share of the query's content words it contains."""

    def __init__(self) -> None:
        self.items: list[FakeHit] = []
        self._next = 1

    def add(self, text: str, *, user_id: str | None, session_id: str | None = None, kind: str = "turn",
            source: str | None = None, vector: Any = None) -> int:
        item = FakeHit(self._next, text, kind, user_id, session_id, source)
        self._next += 1
        self.items.append(item)
        return item.id

    def search(self, query: str, k: int = 5, user_id: str | None = None, kinds: Sequence[str] | None = None,
               *, vector: Any = None) -> builtins.list[FakeHit]:
        words = _words(query)
        found = []
        for item in self.items:
            if item.user_id not in (user_id, None) or (kinds is not None and item.kind not in kinds):
                continue
            overlap = len(words & _words(item.text)) / max(len(words), 1)
            if overlap > 0:
                found.append(FakeHit(item.id, item.text, item.kind, item.user_id, item.session_id, item.source,
                                     overlap, item.created_at))
        return sorted(found, key=lambda h: -h.score)[:k]

    def delete(self, ids: Iterable[int], *, user_id: str | None = None) -> int:
        wanted = set(ids)
        gone = [i for i in self.items if i.id in wanted and (user_id is None or i.user_id == user_id)]
        self.items = [i for i in self.items if i not in gone]
        return len(gone)

    def forget(self, user_id: str) -> int:
        return self.delete([i.id for i in self.items if i.user_id == user_id])

    def forget_session(self, user_id: str, session_id: str) -> int:
        return self.delete([i.id for i in self.items if i.user_id == user_id and i.session_id == session_id])

    def has_documents(self, user_id: str | None = None) -> bool:
        return any(i.kind == "document" and i.user_id in (None, user_id) for i in self.items)

    def list(self, user_id: str | None, kinds: Sequence[str] | None = None, limit: int = 50,
             offset: int = 0) -> builtins.list[FakeHit]:
        own = [i for i in reversed(self.items) if i.user_id == user_id and (kinds is None or i.kind in kinds)]
        return own[offset:offset + limit]


if TYPE_CHECKING:
    def _conforms(store: MemoryStore, fake: FakeMemory) -> tuple[MemoryBackend, MemoryBackend]:
        """mypy fails here if either side stops satisfying the protocol."""
        return store, fake
