"""The sentiment branch: the embedder's top layers, fine-tuned for sentiment, on a tap.

The turn's embedding is the frozen all-MiniLM-L6-v2 vector (memory and the intent head use
it); a linear head on it reaches about 0.85 on SST-2. Fine-tuning the encoder would do
better but would change the vector memory depends on. The branch does both: the embedder's
forward pass hands over the token states of a lower layer (``tap``, e.g. layer 4 of 6) and
the branch runs its own, fine-tuned copy of the layers above it (``k = 6 - tap``), then mean
pooling and a linear layer to negative / neutral / positive. One encoder pass per turn, plus
``k`` layers.

Saved as ``.npz``, loaded with ``allow_pickle=False``; the vectors (biases, layer norms) as
float16. The weight matrices are stored one of two ways:

- given the encoder's own layers (``base``), as what fine-tuning changed: the difference
  from the base matrix, cut to its top ``rank`` singular directions, as two int8 factors
  (scaled per column / per row). The base layers come with the installed encoder, so the
  shipped file holds only the change: 1.65 MB at rank 96 for three MiniLM layers, against
  4.9 MB as plain int8. On SST-2 dev: 0.891 against 0.8945 (rank 64: 0.883, 1.1 MB);
- otherwise, each matrix as int8 with one float32 scale per output row (a quarter of
  float32's bytes; accuracy within noise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.models.minilm import LAYER_KEYS, LayerStates, attention_mask, bert_layer, mean_pool

if TYPE_CHECKING:
    import torch

__all__ = ["SentimentBranch", "BRANCH_FILE", "DELTA_RANK", "BaseLayers"]

BRANCH_FILE = "branch.npz"

DELTA_RANK = 96
"""Singular directions kept of each matrix's change from the encoder (see the module doc)."""

BaseLayers = Callable[[int], dict[str, np.ndarray]]
"""Encoder layer index -> that layer's weights by :data:`~agent.models.minilm.LAYER_KEYS` name."""


@dataclass
class SentimentBranch:
    """``layers``: ``k`` dicts of :data:`~agent.models.minilm.LAYER_KEYS` arrays; ``weight``
    ``[classes, hidden]`` and ``bias`` ``[classes]``; ``tap``: the encoder layer whose
    states it reads."""

    tap: int
    heads: int
    layers: list[dict[str, np.ndarray]]
    weight: np.ndarray
    bias: np.ndarray
    eps: float = 1e-12
    temperature: float = 1.0
    int8: bool = True
    """Run the matrix products with int8 weights and activations (fbgemm's dynamic
    quantization): the branch's layers in about half the CPU time, at a measured cost of
    one SST-2 dev example in 872. False (or a torch without the kernels): float32."""

    def __post_init__(self) -> None:
        self._tensors: list[list[Any]] | None = None
        self._linear: Any = None

    @property
    def depth(self) -> int:
        return len(self.layers)

    def _torch_layers(self) -> list[list[Any]]:
        if self._tensors is None:
            import torch

            tensors = [[torch.from_numpy(np.ascontiguousarray(layer[k], dtype=np.float32)) for k in LAYER_KEYS]
                       for layer in self.layers]
            packed = _pack_int8(tensors) if self.int8 else None
            self._linear = _int8_linear if packed is not None else None
            self._tensors = packed if packed is not None else tensors
        return self._tensors

    def pooled(self, states: LayerStates) -> torch.Tensor:
        """The branch's pooled sentence vectors for a batch of tap states."""
        import torch

        layers = self._torch_layers()
        with torch.inference_mode():
            x = states.states
            mask = attention_mask(states.mask)
            for weights in layers:
                x = bert_layer(x, weights, mask, heads=self.heads, eps=self.eps, linear=self._linear)
            return mean_pool(x, states.mask)

    def logits(self, states: LayerStates) -> np.ndarray:
        """Uncalibrated class logits ``(batch, classes)``."""
        return self.pooled(states).numpy() @ self.weight.T + self.bias

    def save(self, path: Path, *, base: BaseLayers | None = None, rank: int = DELTA_RANK) -> None:
        """Write the branch; with ``base`` (encoder layer index -> that layer's weights, as
        :meth:`agent.models.minilm.LeanBert.layer_weights` gives them) the matrices are stored as
        their rank-``rank`` change from the base, else whole (int8)."""
        arrays: dict[str, Any] = {
            "tap": np.int64(self.tap), "heads": np.int64(self.heads), "eps": np.float64(self.eps),
            "temperature": np.float32(self.temperature),
            "head.weight": self.weight.astype(np.float32), "head.bias": self.bias.astype(np.float32),
        }
        if base is not None:
            arrays["delta_rank"] = np.int64(rank)
        for i, layer in enumerate(self.layers):
            below = base(self.tap + i) if base is not None else None
            for key in LAYER_KEYS:
                name, value = f"layer{i}.{key}", np.asarray(layer[key], dtype=np.float32)
                if value.ndim != 2:
                    arrays[name] = value.astype(np.float16)
                elif below is not None:
                    arrays.update(_low_rank(name, value - below[key], rank))
                else:
                    arrays[name], arrays[f"{name}.scale"] = _to_int8(value)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: Path, *, base: BaseLayers | None = None) -> SentimentBranch:
        """Read a branch; one stored as a change from its encoder needs that encoder's
        layers (``base``, as for :meth:`save`)."""
        with np.load(path, allow_pickle=False) as data:
            delta = "delta_rank" in data
            if delta and base is None:
                raise ValueError(f"{path} stores the branch as a change from its encoder's layers; "
                                 "load it with base= (the encoder's layer weights)")
            tap = int(data["tap"])
            layers: list[dict[str, np.ndarray]] = []
            while f"layer{len(layers)}.{LAYER_KEYS[-1]}" in data:
                i = len(layers)
                below = base(tap + i) if delta and base is not None else None
                layers.append({key: _from_npz(data, f"layer{i}.{key}", None if below is None else below[key])
                               for key in LAYER_KEYS})
            if not layers:
                raise ValueError(f"{path} holds no branch layers")
            return cls(tap, int(data["heads"]), layers, data["head.weight"].astype(np.float32),
                       data["head.bias"].astype(np.float32), float(data["eps"]), float(data["temperature"]))


_MATRICES = tuple(i for i, key in enumerate(LAYER_KEYS) if key.endswith(".weight") and "norm" not in key)


def _pack_int8(layers: list[list[Any]]) -> list[list[Any]] | None:
    """The layers with each weight matrix replaced by fbgemm's packed int8 form (bias
    included), scaled per output row; None when this torch lacks the kernels."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # the quantized tensor API announces its move to torchao
            warnings.simplefilter("ignore")
            out = []
            for tensors in layers:
                packed = list(tensors)
                for i in _MATRICES:
                    weight, bias = tensors[i], tensors[i + 1]
                    scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
                    q = torch.quantize_per_channel(weight, scale, torch.zeros(len(scale), dtype=torch.long), 0,
                                                   torch.qint8)
                    packed[i] = torch.ops.quantized.linear_prepack(q, bias)
                out.append(packed)
            return out
    except (RuntimeError, AttributeError) as exc:
        import logging

        logging.getLogger(__name__).info("int8 kernels unavailable (%s); the sentiment branch runs in float32", exc)
        return None


def _int8_linear(x: Any, packed: Any, bias: Any) -> Any:
    """``F.linear`` on a packed int8 weight (its bias is packed with it)."""
    import torch

    return torch.ops.quantized.linear_dynamic(x, packed, True)


def _to_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row: ``weight ~= q * scale[:, None]``."""
    scale = np.abs(weight).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _low_rank(name: str, delta: np.ndarray, rank: int) -> dict[str, np.ndarray]:
    """``delta ~= u @ v`` from its top ``rank`` singular directions, each factor int8:
    ``u`` scaled per column, ``v`` per row."""
    left, sigma, right = np.linalg.svd(delta, full_matrices=False)
    u = left[:, :rank] * sigma[:rank]
    v = right[:rank]
    u_scale = np.abs(u).max(axis=0) / 127.0
    u_scale[u_scale == 0] = 1.0
    v_q, v_scale = _to_int8(v)
    return {f"{name}.u": np.clip(np.rint(u / u_scale), -127, 127).astype(np.int8),
            f"{name}.u_scale": u_scale.astype(np.float32), f"{name}.v": v_q, f"{name}.v_scale": v_scale}


def _from_npz(data: Any, name: str, base: np.ndarray | None = None) -> np.ndarray:
    if base is not None and f"{name}.u" in data:
        u = data[f"{name}.u"].astype(np.float32) * data[f"{name}.u_scale"]
        v = data[f"{name}.v"].astype(np.float32) * data[f"{name}.v_scale"][:, None]
        return np.asarray(base, dtype=np.float32) + u @ v
    value = data[name]
    if f"{name}.scale" in data:
        return value.astype(np.float32) * data[f"{name}.scale"].astype(np.float32)[:, None]
    return value.astype(np.float32)


def layers_from_module(module: Any) -> list[dict[str, np.ndarray]]:
    """The trained weights of a :class:`BranchModule` as arrays."""
    return [{key: getattr(layer, key.replace(".", "_")).detach().numpy().copy() for key in LAYER_KEYS}
            for layer in module.blocks]


def branch_module(init: Sequence[dict[str, np.ndarray]], n_classes: int, heads: int, eps: float,
                  dropout: float) -> Any:
    """A trainable torch module: the ``init`` layers (copies of the encoder's top layers),
    mean pooling and a linear classifier."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self, weights: dict[str, np.ndarray]) -> None:
            super().__init__()
            for key in LAYER_KEYS:
                self.register_parameter(key.replace(".", "_"),
                                        torch.nn.Parameter(torch.tensor(np.asarray(weights[key], dtype=np.float32))))

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None, p: float) -> torch.Tensor:
            weights = [getattr(self, key.replace(".", "_")) for key in LAYER_KEYS]
            return bert_layer(x, weights, mask, heads=heads, eps=eps, dropout=p)

    class BranchModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(w) for w in init])
            hidden = int(np.asarray(init[0]["attn_out.bias"]).shape[0])
            self.head = torch.nn.Linear(hidden, n_classes)
            self.dropout = dropout

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            p = self.dropout if self.training else 0.0
            sdpa_mask = attention_mask(mask)
            for block in self.blocks:
                x = block(x, sdpa_mask, p)
            pooled = torch.nn.functional.dropout(mean_pool(x, mask), p, self.training)
            return self.head(pooled)

    return BranchModule()
