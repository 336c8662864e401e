"""The conversation store: users, sessions and messages in SQLite.

WAL mode with a busy timeout lets several processes read while one writes; each thread
gets its own connection. A turn (the user's message and the reply) is written in one
transaction, so a crash never leaves half a turn. Messages of a session carry a sequence
number assigned inside that transaction, so turns keep their order under concurrency.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InputError, LlmosError
from agent.sqlite import Database

__all__ = ["ConversationStore", "SessionInfo", "Message", "StoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summary_upto INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    created_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    UNIQUE (session_id, seq)
);
"""


class StoreError(LlmosError):
    """The conversation store failed (disk full, locked database, unknown session)."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user_id: str
    title: str
    created_at: float
    updated_at: float
    turns: int = 0


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    created_at: float
    seq: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class ConversationStore:
    """Sessions and their messages for every user of one agent."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._database = Database(self.path, foreign_keys=True, rows=True)
        try:
            self._db().executescript(_SCHEMA)  # executescript manages its own transaction
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable llmos conversation store: {exc}") from exc

    # ---- connections -------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        return self._database.conn()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._database.write() as db:
                yield db
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the conversation store {self.path} is busy or unwritable: {exc}") from exc

    def close(self) -> None:
        self._database.close()

    # ---- sessions ----------------------------------------------------------------------
    def create_session(self, user_id: str, title: str = "", session_id: str | None = None) -> SessionInfo:
        now = time.time()
        sid = session_id or uuid.uuid4().hex[:16]
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO users(id, created_at) VALUES (?, ?)", (user_id, now))
            row = db.execute("SELECT user_id FROM sessions WHERE id = ?", (sid,)).fetchone()
            if row is not None:
                if row["user_id"] != user_id:
                    raise InputError(f"session {sid} belongs to another user: start a new session instead")
            else:
                db.execute("INSERT INTO sessions(id, user_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                           (sid, user_id, title, now, now))
        return self.get_session(sid)

    def get_session(self, session_id: str) -> SessionInfo:
        row = self._db().execute(
            "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id AND m.role = 'user') AS turns "
            "FROM sessions s WHERE s.id = ?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id!r}: list them with agent.sessions() or start a new one")
        return _session(row)

    def session_exists(self, session_id: str) -> bool:
        return self._db().execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None

    def users(self) -> list[str]:
        """Every user id with a session, oldest user first."""
        rows = self._db().execute("SELECT id FROM users ORDER BY created_at, id").fetchall()
        return [str(r["id"]) for r in rows]

    def sessions(self, user_id: str) -> list[SessionInfo]:
        rows = self._db().execute(
            "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id AND m.role = 'user') AS turns "
            "FROM sessions s WHERE s.user_id = ? ORDER BY s.updated_at DESC", (user_id,)).fetchall()
        return [_session(r) for r in rows]

    def rename_session(self, session_id: str, title: str) -> None:
        with self._tx() as db:
            if db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id)).rowcount == 0:
                raise StoreError(f"no session {session_id!r} to rename")

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def delete_user(self, user_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # ---- messages ----------------------------------------------------------------------
    def add_turn(self, session_id: str, user_text: str, reply_text: str, *, user_meta: dict[str, Any] | None = None,
                 reply_meta: dict[str, Any] | None = None) -> tuple[int, int]:
        """Store a user message and its reply together; returns their sequence numbers."""
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) AS n FROM messages WHERE session_id = ?",
                             (session_id,)).fetchone()
            if not self._exists(db, session_id):
                raise StoreError(f"session {session_id!r} was deleted while the turn ran; nothing was stored")
            seq = int(row["n"]) + 1
            db.execute("INSERT INTO messages(session_id, seq, role, content, created_at, meta) VALUES (?,?,?,?,?,?)",
                       (session_id, seq, "user", user_text, now, json.dumps(user_meta or {})))
            db.execute("INSERT INTO messages(session_id, seq, role, content, created_at, meta) VALUES (?,?,?,?,?,?)",
                       (session_id, seq + 1, "assistant", reply_text, now, json.dumps(reply_meta or {})))
            title_row = db.execute("SELECT title FROM sessions WHERE id = ?", (session_id,)).fetchone()
            title = title_row["title"] if title_row and title_row["title"] else _title_from(user_text)
            db.execute("UPDATE sessions SET updated_at = ?, title = ? WHERE id = ?", (now, title, session_id))
        return seq, seq + 1

    @staticmethod
    def _exists(db: sqlite3.Connection, session_id: str) -> bool:
        return db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None

    def messages(self, session_id: str, *, after_seq: int = 0) -> list[Message]:
        rows = self._db().execute(
            "SELECT role, content, created_at, seq, meta FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq",
            (session_id, after_seq)).fetchall()
        return [Message(r["role"], r["content"], r["created_at"], r["seq"], json.loads(r["meta"])) for r in rows]

    def user_sentiments(self, session_id: str, limit: int = 20) -> list[float]:
        """Signed sentiment scores of the session's recent user turns, oldest first."""
        rows = self._db().execute(
            "SELECT meta FROM messages WHERE session_id = ? AND role = 'user' ORDER BY seq DESC LIMIT ?",
            (session_id, limit)).fetchall()
        scores = [json.loads(r["meta"]).get("sentiment_score") for r in reversed(rows)]
        return [float(s) for s in scores if isinstance(s, (int, float))]

    # ---- running summary of older turns --------------------------------------------------
    def summary(self, session_id: str) -> tuple[str, int]:
        row = self._db().execute("SELECT summary, summary_upto FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return (row["summary"], int(row["summary_upto"])) if row else ("", 0)

    def set_summary(self, session_id: str, summary: str, upto_seq: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET summary = ?, summary_upto = ? WHERE id = ? AND summary_upto <= ?",
                       (summary, upto_seq, session_id, upto_seq))


def _session(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(row["id"], row["user_id"], row["title"], row["created_at"], row["updated_at"], int(row["turns"]))


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")
