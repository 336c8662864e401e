"""Long-term memory and knowledge base: an embedder, a SQLite + FAISS store.

::

    from memory import MemoryConfig, build_store
    store = build_store(MemoryConfig(), data_dir=path)
    store.add("my dog is called Rex", user_id="ann", session_id="s1")
    store.search("what is my dog's name?", k=5, user_id="ann")      # -> list[Hit]
    ingest_paths(store, ["docs/"])                                    # the shared knowledge base

Everything here imports without faiss, torch or sentence-transformers: those load when a
store first searches or an embedder first encodes.
"""

from __future__ import annotations

from agent.models.embedder import DEFAULT_EMBEDDER, Embedder, FakeEmbedder, SentenceEmbedder
from memory.config import MemoryConfig
from memory.factory import build_embedder, build_store
from memory.kb import (
    DocumentInfo,
    IngestReport,
    ingest_paths,
    list_documents,
    remove_documents,
    search_documents,
)
from memory.locomo import LocomoVariant, evaluate_locomo, run_ablation
from memory.records import KINDS, Hit, MemoryItem, MemoryRecord
from memory.store import MemoryStore

__all__ = [
    "DEFAULT_EMBEDDER",
    "DocumentInfo",
    "Embedder",
    "FakeEmbedder",
    "Hit",
    "IngestReport",
    "KINDS",
    "LocomoVariant",
    "MemoryConfig",
    "MemoryItem",
    "MemoryRecord",
    "MemoryStore",
    "SentenceEmbedder",
    "build_embedder",
    "build_store",
    "evaluate_locomo",
    "ingest_paths",
    "list_documents",
    "remove_documents",
    "run_ablation",
    "search_documents",
]
