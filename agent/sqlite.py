"""The one way llmos opens SQLite: a connection per thread, WAL, and a write queue per process.

Base layer: imports nothing of ours. The conversation store, the memory database and the
server's conversation index all open their files through :class:`Database`:

- every thread gets its own connection (``check_same_thread`` is off only so that
  :meth:`Database.close` can close them all from one thread);
- WAL journaling, so readers never wait for a writer;
- :meth:`Database.write` runs one ``BEGIN IMMEDIATE`` transaction, committed on success and
  rolled back on any exception. Writers of this process queue on a lock rather than in
  SQLite's busy handler, which sleeps 1, 2, 5 ... 100 ms between tries: with 50 threads
  writing at once that sleep, not the write, was most of a turn's store time. Other processes
  still meet ``busy_timeout``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

__all__ = ["Database"]


class Database:
    """Connections to one SQLite file.

    ``synchronous``: ``NORMAL`` (a crash may lose the last commits, never corrupts) or ``FULL``
    (a committed write survives a power loss). ``secure_delete`` overwrites deleted text instead
    of leaving it in free pages; ``foreign_keys`` enforces them; ``rows`` returns
    :class:`sqlite3.Row` (access by column name) instead of tuples.
    """

    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
                 secure_delete: bool = False, foreign_keys: bool = False, rows: bool = False,
                 busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._pragmas = [f"PRAGMA synchronous={synchronous}", f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}"]
        if secure_delete:
            self._pragmas.append("PRAGMA secure_delete=ON")
        if foreign_keys:
            self._pragmas.append("PRAGMA foreign_keys=ON")
        self._rows = rows
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._write_lock = threading.RLock()  # re-entrant: a write may call a helper that writes

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use; autocommit outside :meth:`write`)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            for pragma in self._pragmas:
                conn.execute(pragma)
            if self._rows:
                conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._guard:
                self._open.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection: ``BEGIN IMMEDIATE`` (raises
        :class:`sqlite3.OperationalError` when another process holds the file past the busy
        timeout), ``COMMIT`` when the block ends, ``ROLLBACK`` when it raises."""
        conn = self.conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every thread's connection; a later :meth:`conn` opens a fresh one."""
        with self._guard:
            for conn in self._open:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._open.clear()
        self._local = threading.local()
