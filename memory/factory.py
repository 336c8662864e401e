"""Build a memory store from configuration (what the dialogue manager and the CLI call)."""

from __future__ import annotations

from pathlib import Path

from agent.models.embedder import Embedder, FakeEmbedder, SentenceEmbedder
from memory.config import MemoryConfig
from memory.store import MemoryStore

__all__ = ["build_store", "build_embedder"]


def build_embedder(config: MemoryConfig) -> Embedder:
    """The sentence embedder ``config`` names (loaded on first use, on CUDA when present).

    ``fake`` (or ``fake:DIM``) is the deterministic hashed bag-of-words embedder, for tests
    and demos without weights, as ``model.backend: fake`` is for the language model.
    """
    name = config.embedder
    if name == "fake" or name.startswith("fake:"):
        _, _, dim = name.partition(":")
        return FakeEmbedder(int(dim) if dim.isdigit() else 64)
    return SentenceEmbedder(config.embedder, device=config.device, batch_size=config.embed_batch_size,
                            int8=config.embedder_int8)


def build_store(config: MemoryConfig, *, data_dir: str | Path, embedder: Embedder | None = None) -> MemoryStore:
    """The memory store in ``data_dir`` (created if needed).

    Pass the ``embedder`` the caller already uses (the dialogue manager shares one between
    its classifiers and memory, so each turn is embedded once); otherwise the configured
    one is built.
    """
    return MemoryStore(Path(data_dir), embedder if embedder is not None else build_embedder(config), config)
