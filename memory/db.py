"""The SQLite half of the memory store: the source of truth.

Rows hold the text and its provenance; an FTS5 table mirrors the text for BM25 search;
``vectors`` caches one embedding per distinct text (keyed by content hash), so identical
text is embedded once and a lost or stale FAISS index is rebuilt without the embedder.
Every write is one transaction that also bumps ``meta.generation``, which lets a process
notice that another one changed the store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import MemoryStoreError
from agent.sqlite import Database
from memory.lexical import kind_tag, namespace_tag
from memory.records import MemoryRecord

__all__ = ["MemoryDB", "NewRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, which the
                                           -- index manifest relies on (see vector_index)
    ns TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('turn', 'fact', 'document')),
    text TEXT NOT NULL,
    source TEXT,
    locator TEXT,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    meta TEXT
);
CREATE INDEX IF NOT EXISTS memories_ns ON memories (ns, id);
CREATE INDEX IF NOT EXISTS memories_dedupe ON memories (ns, kind, hash);
CREATE INDEX IF NOT EXISTS memories_source ON memories (ns, source);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash);
CREATE INDEX IF NOT EXISTS memories_session ON memories (ns, session_id, id);
CREATE TABLE IF NOT EXISTS vectors (hash TEXT PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    ns TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL, chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL, added_at REAL NOT NULL, PRIMARY KEY (ns, source)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- context: words that help find a memory without being part of it (the neighbouring
-- turns of a conversation, a document's name), weighted lower in BM25
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, context, tags, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

_COLUMNS = "id, text, kind, user_id, session_id, source, locator, created_at, updated_at, meta"

NewRow = tuple[str, str | None, str | None, str, str, str | None, str | None, str, float, dict | None, str | None]
"""(ns, user_id, session_id, kind, text, source, locator, hash, created_at, meta, context)"""


def _record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(
        id=row[0], text=row[1], kind=row[2], user_id=row[3], session_id=row[4], source=row[5],
        locator=row[6], created_at=row[7], updated_at=row[8], meta=json.loads(row[9]) if row[9] else {},
    )


def _marks(n: int) -> str:
    return ",".join("?" * n)


class MemoryDB:
    """Thread-safe access to ``memory.sqlite3``: one connection per thread, WAL mode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # a committed memory survives a crash (FULL); forgotten text is overwritten, not left
        # in free pages (secure_delete)
        self._database = Database(path, synchronous="FULL", secure_delete=True)
        self.generations: tuple[int, int] = (0, 0)
        try:
            self.conn().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"cannot open the memory database {path}: {exc}. Check the path "
                                   "and its permissions, or move the file away to start afresh.") from exc

    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        return self._database.conn()

    def close(self) -> None:
        self._database.close()

    @contextmanager
    def write(self, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue instead of deadlocking).

        With ``bump``, the generation is incremented; :attr:`generations` then holds the
        (before, after) values seen inside the transaction, so the caller can tell whether
        someone else wrote since it last looked.
        """
        with self._database.write() as conn:
            yield conn
            if bump:
                before = int((conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                              or (0,))[0])
                self.meta_set(conn, "generation", str(before + 1))
                self.generations = (before, before + 1)

    # -- meta -------------------------------------------------------------------------------

    def meta_get(self, key: str) -> str | None:
        row = self.conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def meta_set(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        return int(self.meta_get("generation") or 0)

    # -- writes -----------------------------------------------------------------------------

    def existing(self, conn: sqlite3.Connection, ns: str, kind: str, hashes: Iterable[str],
                 source: str | None) -> dict[str, int]:
        """Rows already holding this text (same namespace, kind and source): hash -> id."""
        hashes = list(set(hashes))
        found: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start:start + 500]
            rows = conn.execute(
                f"SELECT hash, id FROM memories WHERE ns = ? AND kind = ? AND source IS ? AND hash IN ({_marks(len(part))})",
                (ns, kind, source, *part),
            )
            found.update(dict(rows))
        return found

    def insert(self, conn: sqlite3.Connection, row: NewRow, now: float) -> int:
        """Insert a row and its FTS entry. A conversation turn's lexical context is its
        neighbours in the session: the previous turn's text, and this text is added to the
        previous turn's context (its "next")."""
        ns, user_id, session_id, kind, text, source, locator, digest, created_at, meta, context = row
        cur = conn.execute(
            "INSERT INTO memories (ns, user_id, session_id, kind, text, source, locator, hash, "
            "created_at, updated_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ns, user_id, session_id, kind, text, source, locator, digest, created_at, min(created_at, now),
             json.dumps(meta) if meta else None),
        )
        row_id = int(cur.lastrowid or 0)
        if context is None and kind == "turn" and session_id is not None:
            prev = conn.execute("SELECT id, text FROM memories WHERE ns = ? AND session_id = ? AND id < ? "
                                "AND kind = 'turn' ORDER BY id DESC LIMIT 1", (ns, session_id, row_id)).fetchone()
            if prev is not None:
                context = prev[1]
                old = conn.execute("SELECT context FROM memories_fts WHERE rowid = ?", (prev[0],)).fetchone()
                if old is not None:
                    conn.execute("UPDATE memories_fts SET context = ? WHERE rowid = ?",
                                 (f"{old[0] or ''}\n{text}".strip(), prev[0]))
        conn.execute("INSERT INTO memories_fts (rowid, text, context, tags) VALUES (?, ?, ?, ?)",
                     (row_id, text, context or "", f"{namespace_tag(ns)} {kind_tag(kind)}"))
        return row_id

    def touch(self, conn: sqlite3.Connection, row_id: int, now: float, session_id: str | None) -> None:
        conn.execute("UPDATE memories SET updated_at = ?, session_id = COALESCE(?, session_id) WHERE id = ?",
                     (now, session_id, row_id))

    def put_vectors(self, conn: sqlite3.Connection, vectors: dict[str, np.ndarray]) -> None:
        conn.executemany("INSERT OR IGNORE INTO vectors (hash, vec) VALUES (?, ?)",
                         [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()])

    def delete_ids(self, conn: sqlite3.Connection, ids: Sequence[int]) -> dict[str, list[int]]:
        """Delete rows (and their FTS entries and orphaned vectors); return ns -> deleted ids.

        A deleted turn's text also leaves its neighbours' lexical context.
        """
        by_ns: dict[str, list[int]] = {}
        hashes: set[str] = set()
        ids = list(ids)
        gone = set(ids)
        around = {n for group in self.neighbours(ids, conn).values() for n in group} - gone
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = conn.execute(f"SELECT id, ns, hash FROM memories WHERE id IN ({_marks(len(part))})", part)
            for row_id, ns, digest in rows.fetchall():
                by_ns.setdefault(ns, []).append(row_id)
                hashes.add(digest)
            conn.execute(f"DELETE FROM memories WHERE id IN ({_marks(len(part))})", part)
            conn.execute(f"DELETE FROM memories_fts WHERE rowid IN ({_marks(len(part))})", part)
        self._drop_orphan_vectors(conn, hashes)
        for row_id in around:
            self._refresh_context(conn, row_id)
        return by_ns

    def _refresh_context(self, conn: sqlite3.Connection, row_id: int) -> None:
        near = self.neighbours([row_id], conn).get(row_id, [])
        texts = [r[0] for n in near for r in conn.execute("SELECT text FROM memories WHERE id = ?", (n,))]
        conn.execute("UPDATE memories_fts SET context = ? WHERE rowid = ?", ("\n".join(texts), row_id))

    def _drop_orphan_vectors(self, conn: sqlite3.Connection, hashes: set[str]) -> None:
        # An embedding is derived from the text: once no row holds the text, it goes too.
        for digest in hashes:
            conn.execute("DELETE FROM vectors WHERE hash = ? AND NOT EXISTS "
                         "(SELECT 1 FROM memories WHERE hash = ?)", (digest, digest))

    def ids_in(self, ns: str) -> list[int]:
        return [r[0] for r in self.conn().execute("SELECT id FROM memories WHERE ns = ?", (ns,))]

    def ids_of_session(self, ns: str, session_id: str) -> list[int]:
        rows = self.conn().execute("SELECT id FROM memories WHERE ns = ? AND session_id = ?", (ns, session_id))
        return [r[0] for r in rows]

    def ids_where(self, ns: str, *, source: str | None = None) -> list[int]:
        rows = self.conn().execute("SELECT id FROM memories WHERE ns = ? AND source IS ?", (ns, source))
        return [r[0] for r in rows]

    # -- reads ------------------------------------------------------------------------------

    def get_vectors(self, hashes: Iterable[str], dim: int) -> dict[str, np.ndarray]:
        hashes = list(set(hashes))
        out: dict[str, np.ndarray] = {}
        conn = self.conn()
        for start in range(0, len(hashes), 500):
            part = hashes[start:start + 500]
            for digest, blob in conn.execute(
                f"SELECT hash, vec FROM vectors WHERE hash IN ({_marks(len(part))})", part
            ):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    out[digest] = vec
        return out

    def rows_for_index(self, ns: str, after_id: int = 0) -> list[tuple[int, str, str]]:
        """(id, hash, text) of a namespace's rows above ``after_id``, by id."""
        return self.conn().execute(
            "SELECT id, hash, text FROM memories WHERE ns = ? AND id > ? ORDER BY id", (ns, after_id)
        ).fetchall()

    def count(self, ns: str, *, max_id: int | None = None) -> int:
        if max_id is None:
            return int(self.conn().execute("SELECT count(*) FROM memories WHERE ns = ?", (ns,)).fetchone()[0])
        return int(self.conn().execute(
            "SELECT count(*) FROM memories WHERE ns = ? AND id <= ?", (ns, max_id)).fetchone()[0])

    def namespaces(self) -> list[str]:
        return [r[0] for r in self.conn().execute("SELECT DISTINCT ns FROM memories")]

    def _scoped(self, columns: str, ids: Sequence[int], namespaces: Sequence[str],
                kinds: Sequence[str] | None) -> sqlite3.Cursor:
        sql = (f"SELECT {columns} FROM memories WHERE id IN ({_marks(len(ids))}) "
               f"AND ns IN ({_marks(len(namespaces))})")
        params: list[Any] = [*ids, *namespaces]
        if kinds:
            sql += f" AND kind IN ({_marks(len(kinds))})"
            params += list(kinds)
        return self.conn().execute(sql, params)

    def fetch(self, ids: Sequence[int], namespaces: Sequence[str], kinds: Sequence[str] | None) -> dict[int, MemoryRecord]:
        """Records by id, restricted to the namespaces (the isolation guarantee) and kinds."""
        if not ids or not namespaces:
            return {}
        return {row[0]: _record(row) for row in self._scoped(_COLUMNS, ids, namespaces, kinds)}

    def admitted(self, ids: Sequence[int], namespaces: Sequence[str], kinds: Sequence[str] | None) -> dict[int, float]:
        """Of ``ids``, those in the namespaces and kinds (id -> updated_at): the cheap
        filter applied to candidates before ranking; full records are fetched for the top."""
        if not ids or not namespaces:
            return {}
        return dict(self._scoped("id, updated_at", ids, namespaces, kinds).fetchall())

    def speakers(self, ids: Sequence[int]) -> dict[int, str]:
        """Who said each memory (its ``meta["speaker"]``), for those that record it."""
        ids = list(ids)[:500]
        if not ids:
            return {}
        rows = self.conn().execute(
            f"SELECT id, json_extract(meta, '$.speaker') FROM memories WHERE id IN ({_marks(len(ids))}) "
            "AND meta IS NOT NULL AND json_valid(meta)", ids)
        return {int(r[0]): str(r[1]) for r in rows if isinstance(r[1], str) and r[1].strip()}

    def neighbours(self, ids: Sequence[int], conn: sqlite3.Connection | None = None) -> dict[int, list[int]]:
        """The previous and next turn of the same session, for conversation turns."""
        conn = conn or self.conn()
        ids = list(ids)
        if len(ids) > 500:
            out: dict[int, list[int]] = {}
            for start in range(0, len(ids), 500):
                out.update(self.neighbours(ids[start:start + 500], conn))
            return out
        if not ids:
            return {}
        rows = conn.execute(
            "SELECT c.id, "
            "(SELECT m.id FROM memories m WHERE m.ns = c.ns AND m.session_id = c.session_id AND m.id < c.id "
            " AND m.kind = 'turn' ORDER BY m.id DESC LIMIT 1), "
            "(SELECT m.id FROM memories m WHERE m.ns = c.ns AND m.session_id = c.session_id AND m.id > c.id "
            " AND m.kind = 'turn' ORDER BY m.id LIMIT 1) "
            f"FROM memories c WHERE c.id IN ({_marks(len(ids))}) AND c.kind = 'turn' AND c.session_id IS NOT NULL",
            list(ids))
        return {r[0]: [n for n in r[1:] if n is not None] for r in rows}

    def list_records(self, namespaces: Sequence[str], kinds: Sequence[str] | None, limit: int,
                     offset: int = 0) -> list[MemoryRecord]:
        if not namespaces:
            return []
        sql = f"SELECT {_COLUMNS} FROM memories WHERE ns IN ({_marks(len(namespaces))})"
        params: list[Any] = list(namespaces)
        if kinds:
            sql += f" AND kind IN ({_marks(len(kinds))})"
            params += list(kinds)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
        return [_record(r) for r in self.conn().execute(sql, [*params, limit, offset])]

    # -- documents (knowledge base bookkeeping) -----------------------------------------------

    def document(self, ns: str, source: str) -> tuple[str, int] | None:
        row = self.conn().execute("SELECT sha256, chunks FROM documents WHERE ns = ? AND source = ?",
                                  (ns, source)).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def put_document(self, conn: sqlite3.Connection, ns: str, source: str, sha256: str, chunks: int,
                     size: int, now: float) -> None:
        conn.execute("INSERT OR REPLACE INTO documents (ns, source, sha256, chunks, bytes, added_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (ns, source, sha256, chunks, size, now))

    def drop_document(self, conn: sqlite3.Connection, ns: str, source: str) -> None:
        conn.execute("DELETE FROM documents WHERE ns = ? AND source = ?", (ns, source))

    def document_owners(self) -> dict[str, str | None]:
        """Namespace -> its user id (None: the shared knowledge base), for every namespace
        that holds documents."""
        rows = self.conn().execute(
            "SELECT d.ns, (SELECT m.user_id FROM memories m WHERE m.ns = d.ns AND m.kind = 'document' LIMIT 1) "
            "FROM (SELECT DISTINCT ns FROM documents) d").fetchall()
        return {ns: user for ns, user in rows}

    def has_documents(self, ns: str) -> bool:
        return self.conn().execute("SELECT 1 FROM documents WHERE ns = ? LIMIT 1", (ns,)).fetchone() is not None

    def documents(self, ns: str) -> list[tuple[str, int, int, float]]:
        """(source, chunks, bytes, added_at) of a namespace's documents."""
        return self.conn().execute(
            "SELECT source, chunks, bytes, added_at FROM documents WHERE ns = ? ORDER BY source", (ns,)
        ).fetchall()

    def forget_namespace(self, conn: sqlite3.Connection, ns: str) -> int:
        ids = [r[0] for r in conn.execute("SELECT id FROM memories WHERE ns = ?", (ns,))]
        self.delete_ids(conn, ids)
        conn.execute("DELETE FROM documents WHERE ns = ?", (ns,))
        return len(ids)

    def scrub(self) -> None:
        """After a forget: rewrite the FTS index (deleted tokens linger in old segments until
        a merge) and truncate the WAL (it holds old page images). A forget marks the database
        first (:meth:`forget_pending`), so a crash before the scrub is finished on the next open."""
        conn = self.conn()
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        with self.write(bump=False) as tx:
            tx.execute("DELETE FROM meta WHERE key = 'scrub_pending'")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def forget_pending(self, conn: sqlite3.Connection) -> None:
        """Inside a forgetting transaction: remember that :meth:`scrub` must run."""
        self.meta_set(conn, "scrub_pending", "1")

    def scrub_if_pending(self) -> bool:
        """Finish the scrub of a forget that a crash interrupted; True if one was pending."""
        if self.meta_get("scrub_pending") is None:
            return False
        self.scrub()
        return True
