"""Long-term memory and knowledge base: an embedder, a SQLite + FAISS store."""

from __future__ import annotations

from memory.embedder import DEFAULT_EMBEDDER, Embedder, FakeEmbedder, SentenceEmbedder

__all__ = ["Embedder", "SentenceEmbedder", "FakeEmbedder", "DEFAULT_EMBEDDER"]
