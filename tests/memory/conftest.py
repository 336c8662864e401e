"""Fixtures for the memory tests: stores on the fake embedder in temporary folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memory import FakeEmbedder, MemoryConfig, MemoryStore
from tests.helpers.embedders import CountingEmbedder


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
