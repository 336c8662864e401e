"""Fixtures for the memory tests: stores on the fake embedder in temporary folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from memory import FakeEmbedder, MemoryConfig, MemoryStore


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, recording every batch it was asked to embed."""

    def __init__(self, dim: int = 64, name: str = "fake") -> None:
        super().__init__(dim=dim, name=name)
        self.batches: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return super().encode(texts)

    @property
    def texts(self) -> list[str]:
        return [t for batch in self.batches for t in batch]


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def open_store(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Callable[..., MemoryStore]]:
    """``open_store(**config)`` opens (or reopens) the store in one temporary folder."""
    opened: list[MemoryStore] = []

    def make(path: Path | None = None, emb: FakeEmbedder | None = None, **config: object) -> MemoryStore:
        store = MemoryStore(path or tmp_path / "memory", emb or embedder, MemoryConfig(**config))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., MemoryStore]) -> MemoryStore:
    return open_store()
