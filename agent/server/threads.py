"""Which stored session an OpenAI-style request continues.

OpenAI clients are stateless: each request carries the whole conversation. llmos is
stateful. Without an explicit ``session_id``, the server hashes the conversation before the
last user message (user and assistant turns, whitespace-normalised; system messages left
out, since clients rebuild them) and looks the digest up here. After a turn it records the
digest of the conversation *including* that turn's reply, so the client's next request,
which resends it, lands in the same session. Digests are per user: a conversation can never
resolve to another user's session.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

from agent.sqlite import Database

__all__ = ["ConversationIndex", "conversation_digest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    user_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (user_id, digest)
);
CREATE INDEX IF NOT EXISTS threads_session ON threads(session_id);
"""


def conversation_digest(user_id: str, turns: Sequence[tuple[str, str]]) -> str:
    """A digest of ``(role, text)`` turns for ``user_id``; equal for equal conversations
    whatever their whitespace."""
    h = hashlib.sha256(user_id.encode("utf-8", "surrogatepass"))
    for role, text in turns:
        h.update(b"\x1e" + role.encode() + b"\x1f" + " ".join(text.split()).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class ConversationIndex:
    """Digest -> session id, per user, in a small SQLite file next to the conversations."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # every statement here is a single-row lookup or write: autocommit, no transaction
        self._database = Database(self.path)
        self._database.conn().executescript(_SCHEMA)

    def find(self, user_id: str, digest: str) -> str | None:
        row = self._database.conn().execute("SELECT session_id FROM threads WHERE user_id = ? AND digest = ?",
                                            (user_id, digest)).fetchone()
        return str(row[0]) if row else None

    def record(self, user_id: str, digest: str, session_id: str) -> None:
        self._database.conn().execute("INSERT OR REPLACE INTO threads(user_id, digest, session_id, created_at) "
                                      "VALUES (?, ?, ?, ?)", (user_id, digest, session_id, time.time()))

    def forget_session(self, session_id: str) -> None:
        self._database.conn().execute("DELETE FROM threads WHERE session_id = ?", (session_id,))

    def forget_user(self, user_id: str) -> None:
        self._database.conn().execute("DELETE FROM threads WHERE user_id = ?", (user_id,))

    def close(self) -> None:
        self._database.close()
