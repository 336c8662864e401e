"""The memory store: SQLite (truth) + per-namespace FAISS indexes, with hybrid recall.

::

    store = build_store(MemoryConfig(), data_dir=path)          # or MemoryStore(path, embedder)
    store.add("my dog is called Rex", user_id="ann", session_id="s1")
    hits = store.search("what's my dog's name?", k=5, user_id="ann")

Isolation: a user's rows live in the user's namespace (its own vector index and a tag in
the FTS index); a search only reads the user's namespace and the shared knowledge base,
and the final SQL fetch filters on those namespaces again, so no ranking bug can return
another user's memory. ``user_id=None`` means the shared knowledge base, never "everyone".
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import InputError, MemoryStoreError
from agent.models.embedder import Embedder
from memory.catalog import IndexCatalog
from memory.config import MemoryConfig
from memory.db import MemoryDB, NewRow
from memory.recall import Recall
from memory.records import KINDS, Hit, MemoryItem, MemoryRecord, check_kinds, content_hash, namespace_for
from memory.vector_index import IndexParams

__all__ = ["MemoryStore"]

log = logging.getLogger(__name__)


class MemoryStore:
    """Long-term memory of an agent's users and its knowledge base, in one folder.

    ``path`` holds ``memory.sqlite3`` and ``index/``. The ``embedder`` is injected (the
    dialogue manager shares one with its classifiers); ``config`` tunes recall and indexing.
    Safe to use from several threads; several processes may share the folder (each notices
    the others' writes and brings its indexes up to date).
    """

    def __init__(self, path: str | Path, embedder: Embedder, config: MemoryConfig | None = None) -> None:
        self.path = Path(path).expanduser()
        self.embedder = embedder
        self.config = config or MemoryConfig()
        self._lock = threading.RLock()  # one writer at a time; also held while an index loads
        self._closed = False
        self.db = MemoryDB(self.path / "memory.sqlite3")
        self._check_embedder()
        cfg = self.config
        params = IndexParams(dim=embedder.dim, hnsw_threshold=cfg.hnsw_threshold, hnsw_m=cfg.hnsw_m,
                             hnsw_ef_construction=cfg.hnsw_ef_construction, hnsw_ef_search=cfg.hnsw_ef_search)
        self.indexes = IndexCatalog(self.db, self.path / "index", params, embedder, self._lock,
                                    save_every=cfg.index_save_every)
        self.recall = Recall(self.db, self.indexes, cfg)
        if self.db.scrub_if_pending():
            log.warning("finished scrubbing forgotten text from %s (a forget was interrupted)", self.path)
        self._generation = self.db.generation()

    # -- lifecycle ----------------------------------------------------------------------------

    def _check_embedder(self) -> None:
        key = f"{self.embedder.name}:{self.embedder.dim}"
        stored = self.db.meta_get("embedder")
        if stored == key:
            return
        with self.db.write(bump=False) as conn:
            if stored is not None:
                log.warning("the embedding model changed (%s -> %s): cached vectors are dropped and each "
                            "index is rebuilt from SQLite, re-embedding its texts, when first used", stored, key)
                conn.execute("DELETE FROM vectors")
            self.db.meta_set(conn, "embedder", key)

    def flush(self) -> None:
        """Save every index with unsaved changes (SQLite is always up to date)."""
        with self._lock:
            self._ensure_open()
            self.indexes.save_all()

    def close(self) -> None:
        """Save the indexes and close the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self.indexes.save_all()
            finally:
                self._closed = True
                self.indexes.close()
                self.db.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise MemoryStoreError("the memory store is closed; open a new one with memory.build_store(...)")

    # -- writing ------------------------------------------------------------------------------

    def add(self, text: str, *, user_id: str | None, session_id: str | None = None, kind: str = "turn",
            source: str | None = None, vector: Any = None, locator: str | None = None,
            created_at: float | None = None, meta: dict[str, Any] | None = None, shared: bool = False) -> int:
        """Store one memory and return its row id.

        ``vector`` is the text's embedding when the caller already has it (the dialogue
        manager embeds each turn once). ``shared=True`` (with ``user_id=None``) adds to the
        knowledge base every user sees.
        """
        item = MemoryItem(text=text, kind=kind, session_id=session_id, source=source, locator=locator,
                          created_at=created_at, meta=meta)
        vectors = None if vector is None else np.asarray(vector, dtype=np.float32).reshape(1, -1)
        return self.add_many([item], user_id=user_id, vectors=vectors, shared=shared)[0]

    def add_many(self, items: Iterable[str | MemoryItem], *, user_id: str | None, session_id: str | None = None,
                 kind: str = "turn", source: str | None = None, vectors: Any = None,
                 shared: bool = False) -> list[int]:
        """Store many memories of one user (or of the shared knowledge base) with one
        embedding batch; return their row ids in order. Text already stored with the same
        kind and source is not stored again (its id is returned and its time refreshed),
        and text whose embedding is cached is not embedded again."""
        self._ensure_open()
        ns = self._owner_namespace(user_id, shared)
        owner = None if shared else user_id
        rows = [self._row(ns, owner, it, session_id, kind, source) for it in items]
        if not rows:
            return []
        hashes = [r[7] for r in rows]
        fresh = self._vectors(rows, vectors)
        with self._lock:
            self._ensure_open()
            index = self.indexes.get(ns)
            now = time.time()
            ids: list[int] = []
            new: dict[int, str] = {}
            with self.db.write() as conn:
                seen: dict[tuple[str, str | None, str], int] = {}
                for row, digest in zip(rows, hashes, strict=True):
                    key = (row[3], row[5], digest)
                    found = seen.get(key) or self.db.existing(conn, ns, row[3], [digest], row[5]).get(digest)
                    if found is not None:
                        self.db.touch(conn, found, now, row[2])
                    else:
                        found = self.db.insert(conn, row, now)
                        new[found] = digest
                    seen[key] = found
                    ids.append(found)
                self.db.put_vectors(conn, fresh)
            self._wrote()
            if new:
                texts = {r[7]: r[4] for r in rows}
                new_rows = [(i, h, texts[h]) for i, h in new.items()]
                index.add(np.fromiter(new, dtype=np.int64), self.indexes.vectors_for(new_rows))
                self.indexes.mark(ns, len(new))
        return ids

    def _row(self, ns: str, owner: str | None, item: str | MemoryItem, session_id: str | None,
             kind: str, source: str | None) -> NewRow:
        if isinstance(item, str):
            item = MemoryItem(text=item)
        if not isinstance(item, MemoryItem) or not isinstance(item.text, str):
            raise InputError(f"a memory must be a str or a MemoryItem, not {type(item).__name__}")
        text = item.text.replace("\x00", "")
        if not text.strip():
            raise InputError("cannot store an empty memory: give some text")
        item_kind = item.kind or kind
        if item_kind not in KINDS:
            raise InputError(f"unknown memory kind {item_kind!r}: use one of {', '.join(KINDS)}")
        created = item.created_at if item.created_at is not None else time.time()
        return (ns, owner, item.session_id or session_id, item_kind, text, item.source or source,
                item.locator, content_hash(text), float(created), item.meta, item.context)

    def _vectors(self, rows: Sequence[NewRow], vectors: Any) -> dict[str, np.ndarray]:
        """Embeddings to cache for these rows: the caller's, else embed the uncached texts once."""
        dim = self.embedder.dim
        if vectors is not None:
            arr = np.asarray(vectors, dtype=np.float32)
            if arr.shape == (len(rows), dim):
                return {r[7]: v for r, v in zip(rows, _unit(arr), strict=True)}
            log.warning("ignoring given vectors of shape %s (expected %s); embedding instead",
                        arr.shape, (len(rows), dim))
        cached = self.db.get_vectors((r[7] for r in rows), dim)
        todo = {r[7]: r[4] for r in rows if r[7] not in cached}
        if not todo:
            return {}
        vecs = self.embedder.encode(list(todo.values()))
        return dict(zip(todo, vecs, strict=True))

    def _wrote(self) -> None:
        before, after = self.db.generations
        if before == self._generation:  # nobody else wrote in between: indexes are current
            self._generation = after

    def delete(self, ids: Iterable[int], *, user_id: str | None = None) -> int:
        """Delete memories by row id (only ``user_id``'s, when given); return how many."""
        self._ensure_open()
        wanted = [int(i) for i in ids]
        if user_id is not None:
            own = set(self.db.ids_in(namespace_for(user_id)))
            wanted = [i for i in wanted if i in own]
        if not wanted:
            return 0
        with self._lock:
            with self.db.write() as conn:
                by_ns = self.db.delete_ids(conn, wanted)
            self._wrote()
            for ns, gone in by_ns.items():
                self.indexes.removed(ns, gone)
        return sum(len(v) for v in by_ns.values())

    def forget(self, user_id: str) -> int:
        """Remove everything a user's namespace holds (rows, text, vectors, index files);
        return how many memories went. Their text is scrubbed from the database files too."""
        self._ensure_open()
        if not isinstance(user_id, str) or not user_id:
            raise InputError("forget needs a user id; to empty the shared knowledge base use `llmos kb remove`")
        ns = namespace_for(user_id)
        with self._lock:
            with self.db.write() as conn:
                self.db.forget_pending(conn)
                removed = self.db.forget_namespace(conn, ns)
            self._wrote()
            self.indexes.drop(ns)
            self.db.scrub()
        log.info("forgot %d memories of user %r", removed, user_id)
        return removed

    def forget_session(self, user_id: str, session_id: str) -> int:
        """Delete the memories that came from one of ``user_id``'s sessions (rows, text,
        vectors, index entries; the text is scrubbed from the database files); return how many."""
        self._ensure_open()
        if not isinstance(user_id, str) or not user_id or not isinstance(session_id, str) or not session_id:
            raise InputError("forget_session needs a user id and a session id")
        with self._lock:
            ids = self.db.ids_of_session(namespace_for(user_id), session_id)
            if not ids:
                return 0
            with self.db.write(bump=False) as conn:
                self.db.forget_pending(conn)
            removed = self.delete(ids, user_id=user_id)
            self.indexes.purge(namespace_for(user_id))
            self.db.scrub()
        log.info("forgot %d memories of session %r", removed, session_id)
        return removed

    # -- reading ------------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, user_id: str | None = None, kinds: Sequence[str] | None = None,
               *, vector: Any = None, include_shared: bool = True) -> list[Hit]:
        """The ``k`` memories most relevant to ``query`` among ``user_id``'s own and the
        shared knowledge base (``user_id=None``: the knowledge base only), best first.

        ``vector`` is the query's embedding if the caller has it (saves embedding again).
        """
        self._ensure_open()
        if k <= 0:
            return []
        if not isinstance(query, str) or (not query.strip() and vector is None):
            raise InputError("cannot search for an empty query: give some text")
        kind_filter = check_kinds(kinds)
        namespaces = self._search_namespaces(user_id, kind_filter, include_shared)
        self._sync()
        return self.recall.search(query, self._query_vector(query, vector), k, namespaces, kind_filter)

    def rerank_features(self, query: str, user_id: str | None, *, k: int = 10, vector: Any = None,
                        kinds: Sequence[str] | None = None, include_shared: bool = True) -> tuple[np.ndarray, list[str | None]]:
        """The re-ranking features of the turns a search for ``query`` would re-order, and
        their sources (for fitting ``memory.rerank``; the search itself is unchanged)."""
        self._ensure_open()
        kind_filter = check_kinds(kinds)
        namespaces = self._search_namespaces(user_id, kind_filter, include_shared)
        self._sync()
        records, x = self.recall.rerank_rows(query, self._query_vector(query, vector), k, namespaces, kind_filter)
        return x, [r.source for r in records]

    def _query_vector(self, query: str, vector: Any) -> np.ndarray:
        if vector is not None:
            vec = np.asarray(vector, dtype=np.float32).reshape(-1)
            if vec.shape[0] == self.embedder.dim:
                return _unit(vec.reshape(1, -1))[0]
            log.warning("ignoring a query vector of dimension %d (the store's embedder has %d)",
                        vec.shape[0], self.embedder.dim)
        return self.embedder.encode([query])[0]

    def _sync(self) -> None:
        """Bring loaded indexes up to date when another process changed the store."""
        if self.db.generation() == self._generation:
            return
        with self._lock:
            current = self.db.generation()
            if current != self._generation:
                for ns in self.indexes.loaded():
                    self.indexes.reconcile(ns)
                self._generation = current

    def get(self, ids: Sequence[int], *, user_id: str | None = None) -> list[MemoryRecord]:
        """Records by id, in the order given, restricted to ``user_id``'s own and shared ones."""
        self._ensure_open()
        namespaces = [namespace_for(user_id), namespace_for(None)] if user_id is not None else [namespace_for(None)]
        found = self.db.fetch([int(i) for i in ids], namespaces, None)
        return [found[int(i)] for i in ids if int(i) in found]

    def list_memories(self, user_id: str | None, kinds: Sequence[str] | None = None, limit: int = 50,
                      offset: int = 0) -> list[Hit]:
        """A user's own memories (``user_id=None``: the shared knowledge base), most recent
        first: what "what do you remember about me?" shows. They come as hits with score 0
        (a listing is not a ranking), so callers can treat both alike."""
        self._ensure_open()
        records = self.db.list_records([namespace_for(user_id)], check_kinds(kinds), max(0, limit), max(0, offset))
        return [Hit(**vars(r)) for r in records]

    def has_documents(self, user_id: str | None = None) -> bool:
        """Whether the shared knowledge base, or ``user_id``'s own documents, hold anything."""
        self._ensure_open()
        namespaces = [namespace_for(None)] + ([] if user_id is None else [namespace_for(user_id)])
        return any(self.db.has_documents(ns) for ns in namespaces)

    def count(self, user_id: str | None = None) -> int:
        """How many memories a user has (``None``: the shared knowledge base)."""
        self._ensure_open()
        return self.db.count(namespace_for(user_id))

    # -- namespaces ---------------------------------------------------------------------------

    @staticmethod
    def _owner_namespace(user_id: str | None, shared: bool) -> str:
        if shared:
            if user_id is not None:
                raise InputError("a shared memory belongs to no user: pass user_id=None with shared=True")
            return namespace_for(None)
        if not isinstance(user_id, str) or not user_id:
            raise InputError("a memory needs a user_id (or shared=True for the shared knowledge base)")
        return namespace_for(user_id)

    @staticmethod
    def _search_namespaces(user_id: str | None, kinds: tuple[str, ...] | None, include_shared: bool) -> list[str]:
        if user_id is not None and (not isinstance(user_id, str) or not user_id):
            raise InputError("user_id must be a non-empty string (or None for the shared knowledge base)")
        out = [] if user_id is None else [namespace_for(user_id)]
        if (user_id is None or include_shared) and (kinds is None or "document" in kinds):
            out.append(namespace_for(None))
        return out

    # Last in the class: a method named ``list`` shadows the builtin in annotations below it.
    def list(self, user_id: str | None, kinds: Sequence[str] | None = None, limit: int = 50,
             offset: int = 0) -> builtins.list[Hit]:
        """Alias of :meth:`list_memories` (the name the dialogue manager uses)."""
        return self.list_memories(user_id, kinds, limit, offset)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
