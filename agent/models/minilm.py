"""A lean forward pass for BERT-style sentence embedders (the shipped all-MiniLM-L6-v2).

sentence-transformers' ``encode`` runs Hugging Face's ``BertModel`` behind a general
pipeline; for one chat turn (about ten tokens) most of its time is per-op overhead, not
arithmetic. This module runs the same arithmetic with fewer ops: the tokenizer from
``tokenizer.json``, the three attention projections fused into one matrix product,
``scaled_dot_product_attention``, mean pooling over the real tokens and L2
normalisation. The vectors match sentence-transformers' to about 1e-6 (a test checks),
so stored memories stay valid.

It also hands out an intermediate layer's token states, so a task branch (the sentiment
head's own top layers, :mod:`agent.understand.branch`) can start from the turn's forward
pass instead of running the encoder again: one encoder pass per turn.

A folder qualifies (:func:`lean_supported`) when it is a BERT model with sentence-
transformers' mean pooling and Normalize modules; anything else goes through
sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["LeanBert", "LayerStates", "bert_layer", "lean_supported", "LAYER_KEYS"]

LAYER_KEYS = (
    "qkv.weight", "qkv.bias", "attn_out.weight", "attn_out.bias", "attn_norm.weight", "attn_norm.bias",
    "ffn_in.weight", "ffn_in.bias", "ffn_out.weight", "ffn_out.bias", "out_norm.weight", "out_norm.bias",
)
"""The tensors of one encoder layer, in the order :func:`bert_layer` takes them."""

_HF_NAMES = {
    "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "out_norm": "output.LayerNorm",
}


@dataclass
class LayerStates:
    """Token states of one encoder layer for a batch: ``states`` ``(batch, tokens, hidden)``
    and ``mask`` ``(batch, tokens)`` (1 for a real token, 0 for padding)."""

    states: torch.Tensor
    mask: torch.Tensor


def bert_layer(x: torch.Tensor, weights: Sequence[Any], mask: torch.Tensor | None, *, heads: int,
               eps: float = 1e-12, dropout: float = 0.0, linear: Callable[..., torch.Tensor] | None = None,
               ) -> torch.Tensor:
    """One post-norm BERT encoder layer. ``weights`` follow :data:`LAYER_KEYS`; ``mask`` is
    None (no padding) or a boolean ``(batch, 1, 1, tokens)`` that is True for real tokens.
    ``dropout`` > 0 is for training (attention and hidden dropout, as BERT has).
    ``linear(x, weight, bias)`` replaces ``F.linear`` (an int8 kernel, say)."""
    import torch.nn.functional as F

    linear = linear or F.linear
    qkv_w, qkv_b, ao_w, ao_b, an_w, an_b, fi_w, fi_b, fo_w, fo_b, on_w, on_b = weights
    batch, tokens, hidden = x.shape
    qkv = linear(x, qkv_w, qkv_b).view(batch, tokens, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
    attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, dropout_p=dropout)
    attended = attended.transpose(1, 2).reshape(batch, tokens, hidden)
    out = linear(attended, ao_w, ao_b)
    x = F.layer_norm((F.dropout(out, dropout) if dropout else out) + x, (hidden,), an_w, an_b, eps)
    out = linear(F.gelu(linear(x, fi_w, fi_b)), fo_w, fo_b)
    return F.layer_norm((F.dropout(out, dropout) if dropout else out) + x, (hidden,), on_w, on_b, eps)


def attention_mask(mask: torch.Tensor) -> torch.Tensor | None:
    """The SDPA mask for a ``(batch, tokens)`` 0/1 mask; None when nothing is padding."""
    if bool(mask.all()):
        return None
    return mask.bool()[:, None, None, :]


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' states, as sentence-transformers' Pooling computes it."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def lean_supported(folder: Path) -> bool:
    """Whether ``folder`` is a sentence-transformers BERT model with mean pooling and
    normalisation, which :class:`LeanBert` reproduces."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    only_mean = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    return (config.get("model_type") == "bert" and config.get("position_embedding_type", "absolute") == "absolute"
            and config.get("hidden_act") == "gelu" and kinds == ["Transformer", "Pooling", "Normalize"]
            and bool(only_mean) and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())


class LeanBert:
    """Tokenizer + BERT encoder + mean pooling + normalisation, in plain torch ops.

    :meth:`encode` returns the unit vectors and, when asked, one layer's token states
    (layer 0 is the embeddings' output, layer ``n`` the ``n``-th encoder layer's).
    """

    def __init__(self, folder: Path, *, max_seq_length: int | None = None) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        st_config = folder / "sentence_bert_config.json"
        if max_seq_length is None and st_config.is_file():
            max_seq_length = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        self.max_seq_length = int(max_seq_length or config.get("max_position_embeddings", 512))
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.num_layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        raw = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if any(k.startswith("bert.") for k in raw) else ""
        tensors = {k[len(prefix):]: v.float() for k, v in raw.items() if k.startswith(prefix)}
        self.word = tensors["embeddings.word_embeddings.weight"]
        self.position = tensors["embeddings.position_embeddings.weight"]
        self.token_type = tensors["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (tensors["embeddings.LayerNorm.weight"], tensors["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(tensors, i, torch) for i in range(self.num_layers)]

    @staticmethod
    def _layer(tensors: dict[str, Any], i: int, torch: Any) -> list[Any]:
        """Layer ``i``'s tensors in :data:`LAYER_KEYS` order (q, k, v fused into one)."""
        base = f"encoder.layer.{i}."
        qkv = [tensors[f"{base}attention.self.{n}.weight"] for n in ("query", "key", "value")]
        qkv_b = [tensors[f"{base}attention.self.{n}.bias"] for n in ("query", "key", "value")]
        out = [torch.cat(qkv).contiguous(), torch.cat(qkv_b).contiguous()]
        for key in LAYER_KEYS[2:]:
            module, _, leaf = key.partition(".")
            out.append(tensors[f"{base}{_HF_NAMES[module]}.{leaf}"].contiguous())
        return out

    def layer_weights(self, i: int) -> dict[str, np.ndarray]:
        """Layer ``i``'s weights by :data:`LAYER_KEYS` name (to initialise a branch)."""
        return {key: t.numpy().copy() for key, t in zip(LAYER_KEYS, self.layers[i], strict=True)}

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and the 0/1 mask, right-padded to the longest text."""
        import torch

        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = torch.zeros((len(encodings), width), dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = torch.tensor(e.ids)
            mask[row, :len(e.ids)] = 1
        return ids, mask

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, *, keep: int | None = None,
                stop: int | None = None) -> tuple[torch.Tensor, LayerStates | None]:
        """Run layers ``1..stop`` (default: all); return the last states run and layer
        ``keep``'s states (None when not asked)."""
        import torch.nn.functional as F

        x = F.embedding(ids, self.word) + self.position[: ids.shape[1]] + self.token_type
        x = F.layer_norm(x, (self.hidden,), *self.embed_norm, self.eps)
        sdpa_mask = attention_mask(mask)
        kept = LayerStates(x, mask) if keep == 0 else None
        for i, weights in enumerate(self.layers[: self.num_layers if stop is None else stop], start=1):
            x = bert_layer(x, weights, sdpa_mask, heads=self.heads, eps=self.eps)
            if keep == i:
                kept = LayerStates(x, mask)
        return x, kept

    def encode(self, texts: Sequence[str], *, keep: int | None = None) -> tuple[np.ndarray, LayerStates | None]:
        """Unit vectors ``(len(texts), hidden)`` for one batch, and layer ``keep``'s states."""
        import torch
        import torch.nn.functional as F

        ids, mask = self.tokenize(texts)
        with torch.inference_mode():
            last, kept = self.forward(ids, mask, keep=keep)
            vectors = F.normalize(mean_pool(last, mask), p=2.0, dim=1)
        return vectors.numpy(), kept
