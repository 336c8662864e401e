"""Embedding many texts for training, in chunks, with progress reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agent.errors import ConfigError

__all__ = ["embed_texts", "Progress"]

Progress = Callable[[float, str], None]
"""A progress callback: fraction done in [0, 1] and a short description."""


def embed_texts(embedder: Any, texts: Sequence[str], *, progress: Progress | None = None,
                chunk: int = 512) -> tuple[np.ndarray, float]:
    """Embed ``texts`` with ``embedder``; return the vectors and the seconds it took."""
    if embedder is None:
        raise ConfigError("training from texts needs an embedder; pass embedder=... or precomputed vectors")
    start = time.perf_counter()
    parts = []
    for begin in range(0, len(texts), chunk):
        parts.append(np.asarray(embedder.encode(list(texts[begin:begin + chunk])), dtype=np.float32))
        if progress is not None:
            done = min(len(texts), begin + chunk)
            progress(done / len(texts), f"embedded {done}/{len(texts)} texts")
    vectors = np.vstack(parts) if parts else np.zeros((0, int(getattr(embedder, "dim", 0))), dtype=np.float32)
    return vectors, time.perf_counter() - start
