"""One namespace's FAISS index: exact inner product while small, HNSW past a size.

Vectors are keyed by their SQLite row id (``IndexIDMap2``). An HNSW graph cannot drop a
vector, so deleted ids stay in it as tombstones that searches skip, until enough of them
pile up to rebuild. faiss is imported here, lazily, so importing :mod:`memory` stays light.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.errors import MemoryStoreError

__all__ = ["IndexParams", "VectorIndex", "omp_threads"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexParams:
    """How a namespace index is built (from :class:`memory.config.MemoryConfig`)."""

    dim: int
    hnsw_threshold: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 96


def _faiss() -> Any:
    import faiss

    return faiss


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """Run faiss with ``n`` OpenMP threads in this thread (the setting is per thread).

    One query is fastest on one thread: on a busy 2-core machine OpenMP's spinning threads
    made a single flat search ~15x slower. Bulk builds use every core.
    """
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class VectorIndex:
    """Row-id-keyed vectors of one namespace, searchable by inner product (cosine)."""

    def __init__(self, params: IndexParams, index: Any = None, deleted: set[int] | None = None) -> None:
        faiss = _faiss()
        self.params = params
        self.lock = threading.Lock()  # faiss indexes are not safe to add to while searched
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(params.dim))
        self.deleted: set[int] = set(deleted or ())
        ids = self.ids()
        self.max_row_id = int(ids.max()) if ids.size else 0

    # -- facts ------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        faiss = _faiss()
        inner = faiss.downcast_index(self._index.index)
        return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def live(self) -> int:
        return self.ntotal - len(self.deleted)

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    # -- changes ----------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (unit length, float32) under their row ids; switch to HNSW when the
        namespace outgrows exact search."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.params.dim:
            raise MemoryStoreError(f"vector dimension {vectors.shape[-1]} does not match the index "
                                   f"({self.params.dim}); use the embedder the store was built with")
        if self.kind == "flat" and self.live + len(ids) >= self.params.hnsw_threshold:
            live_ids, live_vecs = self.snapshot()
            fresh = self.build(self.params, np.concatenate([live_ids, ids]), np.vstack([live_vecs, vectors]))
            with self.lock:
                self._index, self.deleted = fresh._index, set()
        else:
            with self.lock, omp_threads(os.cpu_count() or 1):  # HNSW inserts run in parallel
                self._index.add_with_ids(vectors, ids)
        self.max_row_id = max(self.max_row_id, int(ids.max()))

    def remove(self, ids: list[int]) -> None:
        with self.lock:
            present = set(ids) & set(self.ids().tolist())
            if not present:
                return
            if self.kind == "flat":
                self._index.remove_ids(np.fromiter(present, dtype=np.int64))
            else:
                self.deleted |= present

    def needs_compaction(self) -> bool:
        return bool(self.deleted) and len(self.deleted) > max(64, self.ntotal // 10)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the live entries, read back from the index."""
        with self.lock:
            ids = self.ids()
            if ids.size == 0:
                return ids, np.zeros((0, self.params.dim), dtype=np.float32)
            vecs = self._index.reconstruct_batch(ids)
        keep = ~np.isin(ids, np.fromiter(self.deleted, dtype=np.int64)) if self.deleted else slice(None)
        return ids[keep], np.asarray(vecs, dtype=np.float32)[keep]

    # -- search -----------------------------------------------------------------------------

    def search(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The ``n`` nearest live rows: (row id, cosine similarity), best first."""
        faiss = _faiss()
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self.lock:
            total = self.ntotal
            if total == 0 or n <= 0:
                return []
            want = min(total, n + len(self.deleted))
            with omp_threads(1):
                if self.kind == "hnsw":
                    params = faiss.SearchParametersHNSW()
                    params.efSearch = max(self.params.hnsw_ef_search, want)
                    scores, ids = self._index.search(query, want, params=params)
                else:
                    scores, ids = self._index.search(query, want)
        out = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and int(i) not in self.deleted]
        return out[:n]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those ``ids`` this index holds (live ones only)."""
        out: dict[int, np.ndarray] = {}
        with self.lock:
            for i in ids:
                if i in self.deleted:
                    continue
                try:
                    out[i] = np.asarray(self._index.reconstruct(int(i)), dtype=np.float32)
                except RuntimeError:  # not in this index
                    continue
        return out

    # -- persistence ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        with self.lock:
            return _faiss().serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, params: IndexParams, data: bytes, deleted: set[int] | None = None) -> VectorIndex:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if not isinstance(index, faiss.IndexIDMap2) or index.d != params.dim:
            raise MemoryStoreError("the index file does not hold a row-id keyed index of the right dimension")
        return cls(params, index, deleted)

    @classmethod
    def build(cls, params: IndexParams, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        """A fresh index over these vectors: exact below the HNSW threshold, HNSW above."""
        faiss = _faiss()
        if len(ids) >= params.hnsw_threshold:
            inner = faiss.IndexHNSWFlat(params.dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = params.hnsw_ef_construction
            inner.hnsw.efSearch = params.hnsw_ef_search
            log.info("building an HNSW index over %d vectors (M=%d)", len(ids), params.hnsw_m)
        else:
            inner = faiss.IndexFlatIP(params.dim)
        index = faiss.IndexIDMap2(inner)
        if len(ids):
            with omp_threads(os.cpu_count() or 1):
                index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                   np.ascontiguousarray(ids, dtype=np.int64))
        return cls(params, index)
