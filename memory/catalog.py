"""The namespace indexes on disk and in memory, kept in agreement with SQLite.

Loading an index checks its manifest against the file and against SQLite. Rows committed
after the last save (a crash, or a save that was not due yet) are added from the vector
cache; anything else that disagrees - a missing or unreadable manifest, a truncated or
corrupt file, a changed embedding model, a count SQLite does not confirm - is logged and
the index is rebuilt from SQLite. An index is never silently empty or mixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.files import atomic_write
from agent.models.embedder import Embedder
from memory.db import MemoryDB
from memory.persist import Manifest, read_manifest, sha256_bytes
from memory.vector_index import IndexParams, VectorIndex

__all__ = ["IndexCatalog"]

log = logging.getLogger(__name__)

_EMBED_CHUNK = 256  # texts per embedding call when a rebuild has to re-embed


class IndexCatalog:
    """Loads, rebuilds, reconciles and saves the per-namespace vector indexes.

    ``lock`` is the store's write lock: loading holds it, so no write lands between
    reading SQLite and installing the index.
    """

    def __init__(self, db: MemoryDB, folder: Path, params: IndexParams, embedder: Embedder,
                 lock: threading.RLock, save_every: int = 256) -> None:
        self.db = db
        self.folder = folder
        self.params = params
        self.embedder = embedder
        self.lock = lock
        self.save_every = save_every
        self._indexes: dict[str, VectorIndex] = {}
        self._dirty: dict[str, int] = {}
        self.rebuilds: list[tuple[str, str]] = []
        """(namespace, reason) of every rebuild this process did: for logs and tests."""
        folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, ns: str) -> tuple[Path, Path]:
        return self.folder / f"{ns}.faiss", self.folder / f"{ns}.json"

    # -- access -----------------------------------------------------------------------------

    def get(self, ns: str) -> VectorIndex:
        index = self._indexes.get(ns)
        if index is not None:
            return index
        with self.lock:
            index = self._indexes.get(ns)
            if index is None:
                index = self._load(ns)
                self._indexes[ns] = index
            return index

    def loaded(self) -> list[str]:
        return list(self._indexes)

    # -- vectors ----------------------------------------------------------------------------

    def vectors_for(self, rows: Sequence[tuple[int, str, str]]) -> np.ndarray:
        """Vectors of (id, hash, text) rows: from the cache, embedding (and caching) the rest."""
        dim = self.embedder.dim
        cached = self.db.get_vectors((h for _, h, _ in rows), dim)
        missing = {h: t for _, h, t in rows if h not in cached}
        if missing:
            log.warning("embedding %d texts that have no cached vector for %s", len(missing), self.embedder.name)
            items = list(missing.items())
            for start in range(0, len(items), _EMBED_CHUNK):
                part = items[start:start + _EMBED_CHUNK]
                vecs = self.embedder.encode([t for _, t in part])
                fresh = {h: v for (h, _), v in zip(part, vecs, strict=True)}
                with self.db.write(bump=False) as conn:  # a cache fill changes no memory
                    self.db.put_vectors(conn, fresh)
                cached.update(fresh)
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.vstack([cached[h] for _, h, _ in rows]).astype(np.float32, copy=False)

    # -- load / rebuild ---------------------------------------------------------------------

    def _load(self, ns: str) -> VectorIndex:
        index_path, manifest_path = self._paths(ns)
        if not index_path.exists() and not manifest_path.exists():
            if self.db.count(ns) == 0:
                return VectorIndex(self.params)
            return self.rebuild(ns, "no index file")
        manifest = read_manifest(manifest_path)
        index, reason = self._open(ns, index_path, manifest)
        if index is None or manifest is None:
            return self.rebuild(ns, reason)
        tail = self.db.rows_for_index(ns, after_id=manifest.max_row_id)
        if tail:
            log.info("index of namespace %s: adding %d rows committed after its last save", ns, len(tail))
            index.add(np.array([r[0] for r in tail], dtype=np.int64), self.vectors_for(tail))
            self._dirty[ns] = self._dirty.get(ns, 0) + len(tail)
        return index

    def _open(self, ns: str, path: Path, manifest: Manifest | None) -> tuple[VectorIndex | None, str]:
        """The saved index if it checks out, else ``(None, why not)``."""
        if manifest is None:
            return None, "its manifest is missing or unreadable"
        if manifest.namespace != ns:
            return None, f"its manifest belongs to namespace {manifest.namespace}"
        if manifest.model != self.embedder.name or manifest.dim != self.embedder.dim:
            return None, (f"the embedding model changed ({manifest.model}/{manifest.dim} -> "
                          f"{self.embedder.name}/{self.embedder.dim})")
        try:
            data = path.read_bytes()
        except OSError as exc:
            return None, f"the index file cannot be read ({exc})"
        if len(data) != manifest.size:
            return None, f"the index file is truncated ({len(data)} of {manifest.size} bytes)"
        if sha256_bytes(data) != manifest.checksum:
            return None, "the index file does not match its manifest's checksum"
        try:
            index = VectorIndex.from_bytes(self.params, data, set(manifest.deleted))
        except Exception as exc:  # faiss raises RuntimeError subclasses for corrupt input
            return None, f"the index file is corrupt ({exc})"
        if index.live != manifest.count:
            return None, f"the index holds {index.live} vectors, its manifest says {manifest.count}"
        in_sqlite = self.db.count(ns, max_id=manifest.max_row_id)
        if in_sqlite != manifest.count:
            return None, (f"the manifest disagrees with SQLite ({manifest.count} vectors up to row "
                          f"{manifest.max_row_id}, SQLite has {in_sqlite})")
        index.max_row_id = max(index.max_row_id, manifest.max_row_id)
        return index, ""

    def rebuild(self, ns: str, reason: str) -> VectorIndex:
        """Build the namespace's index from SQLite, save it and say why in the log."""
        with self.lock:
            rows = self.db.rows_for_index(ns)
            log.warning("rebuilding the vector index of namespace %s from SQLite (%d rows): %s",
                        ns, len(rows), reason)
            self.rebuilds.append((ns, reason))
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            index = VectorIndex.build(self.params, ids, self.vectors_for(rows))
            self._indexes[ns] = index
            self.save(ns, index)
            return index

    def reconcile(self, ns: str) -> None:
        """Make a loaded index hold exactly SQLite's rows (after another process wrote)."""
        index = self._indexes.get(ns)
        if index is None:
            return
        in_db = set(self.db.ids_in(ns))
        live, _ = index.snapshot()
        in_index = set(live.tolist())
        extra = sorted(in_index - in_db)
        if extra:
            index.remove(extra)
        missing = sorted(in_db - in_index)
        if missing:
            wanted = set(missing)
            rows = [r for r in self.db.rows_for_index(ns) if r[0] in wanted]
            index.add(np.array([r[0] for r in rows], dtype=np.int64), self.vectors_for(rows))
        if extra or missing:
            self.mark(ns, len(extra) + len(missing))

    # -- save -------------------------------------------------------------------------------

    def mark(self, ns: str, changes: int) -> None:
        """Count changes; save once they are worth the write (a save rewrites the whole file,
        so big indexes save less often; rows after the last save are recovered from SQLite)."""
        self._dirty[ns] = self._dirty.get(ns, 0) + changes
        index = self._indexes.get(ns)
        if index is not None and self._dirty[ns] >= max(self.save_every, index.live // 10):
            if index.needs_compaction():
                self.rebuild(ns, f"{len(index.deleted)} deleted vectors to drop from the HNSW graph")
            else:
                self.save(ns, index)

    def removed(self, ns: str, ids: list[int]) -> None:
        """Rows were deleted from SQLite: drop their vectors and save, so that a restart
        finds an index that agrees (a stale one would be rebuilt anyway)."""
        index = self._indexes.get(ns)
        if index is None:
            return
        index.remove(ids)
        if index.needs_compaction():
            self.rebuild(ns, f"{len(index.deleted)} deleted vectors to drop from the HNSW graph")
        else:
            self.save(ns, index)

    def save(self, ns: str, index: VectorIndex | None = None) -> None:
        index = index or self._indexes.get(ns)
        if index is None:
            return
        index_path, manifest_path = self._paths(ns)
        with self.lock:
            data = index.to_bytes()
            manifest = Manifest(
                namespace=ns, kind=index.kind, count=index.live, max_row_id=index.max_row_id,
                model=self.embedder.name, dim=self.embedder.dim, checksum=sha256_bytes(data),
                size=len(data), deleted=sorted(index.deleted),
            )
            atomic_write(index_path, data)
            atomic_write(manifest_path, manifest.to_json())
            self._dirty[ns] = 0

    def save_all(self) -> None:
        for ns, changes in list(self._dirty.items()):
            if changes:
                self.save(ns)

    def purge(self, ns: str) -> None:
        """After memories were forgotten: leave none of their vectors in any index file. A
        loaded HNSW graph (which can only mark vectors deleted) is rebuilt from SQLite; an
        index not loaded is deleted from disk and rebuilt from SQLite when next used."""
        with self.lock:
            index = self._indexes.get(ns)
            if index is None:
                self.drop(ns)
            elif index.deleted:
                self.rebuild(ns, "the vectors of forgotten memories leave the HNSW graph")

    def drop(self, ns: str) -> None:
        """Forget a namespace's index: in memory and on disk (manifest first, so a crash in
        between leaves an index without manifest, which is rebuilt, never trusted)."""
        with self.lock:
            self._indexes.pop(ns, None)
            self._dirty.pop(ns, None)
            index_path, manifest_path = self._paths(ns)
            manifest_path.unlink(missing_ok=True)
            index_path.unlink(missing_ok=True)

    def close(self) -> None:
        self._indexes.clear()
        self._dirty.clear()
