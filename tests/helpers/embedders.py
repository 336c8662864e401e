"""Embedders for tests: the fake embedder, recording what it was asked to embed."""

from __future__ import annotations

import numpy as np

from memory import FakeEmbedder


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
