"""A Llama-family checkpoint read straight from its folder, without transformers.

Importing transformers' configuration and modeling code takes 4-5 s on a 2-core CPU, more
than everything else in an ``Agent()`` start-up together. The lean CPU decoder
(:class:`~agent.models.fastpath.FastDecoder`) needs none of it: only the weights, a few
config values and the rotary frequencies. :class:`Checkpoint` provides exactly those,
under the attribute names of a Hugging Face ``*ForCausalLM`` (``model.layers[i].mlp.
down_proj.weight`` is the safetensors key of that name), so the decoder reads either.

Tensors are read from the safetensors files when asked for, and not kept: with the packed
weights already cached (``~/.cache/llmos/fast``) the decoder reads only the embeddings and
norms, so the fp32 layer matrices are never in memory; without, they live only while
they are packed.

:func:`lean_reason` says when a folder cannot be read this way; the loader then uses
transformers, as for every other model.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["Checkpoint", "lean_reason"]

ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
_ROPE_TYPES = ("default", "linear")  # the ones computed here; llama3 etc. go through transformers
_FLOATS = {"F32", "F16", "BF16"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return data


def _rope(config: dict[str, Any]) -> tuple[str, float, float]:
    """(rope type, theta, linear factor) from a transformers 4 or 5 config."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = str(params.get("rope_type", params.get("type", "default")))
    theta = float(params.get("rope_theta", config.get("rope_theta", 10000.0)))
    factor = float(params.get("factor", 1.0)) if kind == "linear" else 1.0
    return kind, theta, factor


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map") or {}
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def lean_reason(folder: str | Path) -> str | None:
    """Why ``folder`` cannot load as a :class:`Checkpoint` (None: it can)."""
    path = Path(folder)
    if not (path / "config.json").is_file():
        return "no config.json"
    try:
        config = _read_json(path / "config.json")
    except ModelError as exc:
        return str(exc)
    architectures = config.get("architectures") or []
    if len(architectures) != 1 or architectures[0] not in ARCHITECTURES:
        return f"architecture {architectures} (lean loading reads {', '.join(ARCHITECTURES)})"
    if config.get("quantization_config"):
        return "the checkpoint is quantized"
    if config.get("hidden_act", "silu") != "silu":
        return f"activation {config.get('hidden_act')}"
    kind, _, _ = _rope(config)
    if kind not in _ROPE_TYPES or float(config.get("partial_rotary_factor", 1.0)) != 1.0:
        return f"rope type {kind!r}"
    if any(t != "full_attention" for t in (config.get("layer_types") or [])):
        return "sliding-window attention layers"
    if not _weight_files(path):
        return "no safetensors weights"
    return None


class _Node:
    """One level of the module tree: attributes are tensors, sub-nodes or extras."""

    def __init__(self, checkpoint: Checkpoint, prefix: str, extras: dict[str, Any] | None = None) -> None:
        self._checkpoint = checkpoint
        self._prefix = prefix
        self._extras = extras or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._extras:
            return self._extras[name]
        key = self._prefix + name
        if self._checkpoint.has_tensor(key):
            return self._checkpoint.tensor(key)
        if self._checkpoint.has_prefix(key + "."):
            node = _Node(self._checkpoint, key + ".")
            self._extras[name] = node
            return node
        raise AttributeError(f"{self._prefix or 'checkpoint '}{name} is not in the checkpoint")


class Checkpoint:
    """The weights and config of a Llama-family folder, shaped like a transformers causal LM
    for :class:`~agent.models.fastpath.FastDecoder` (and nothing else: it has no forward).

    ``dtype`` is what every tensor is converted to when read (a torch float dtype). Every
    tensor is checked at construction to be a float tensor (the decoder trusts that).
    """

    hf_quantizer = None

    def __init__(self, folder: str | Path, dtype: torch.dtype) -> None:
        import torch
        from safetensors import safe_open

        self.folder = Path(folder)
        reason = lean_reason(self.folder)
        if reason is not None:
            raise ModelError(f"{self.folder} cannot be read without transformers: {reason}")
        raw = _read_json(self.folder / "config.json")
        self.architecture = raw["architectures"][0]
        self.dtype = dtype
        self.device = torch.device("cpu")
        self._where: dict[str, Path] = {}
        self._handles: dict[Path, Any] = {}
        for file in _weight_files(self.folder):
            try:
                with safe_open(str(file), framework="pt") as f:
                    for key in f.keys():
                        if f.get_slice(key).get_dtype() not in _FLOATS:
                            raise ModelError(f"{file.name}: {key} is not a float tensor; load this model "
                                             "through transformers (fast=False)")
                        self._where[key] = file
            except ModelError:
                raise
            except Exception as exc:  # SafetensorError, OSError: a torn or foreign file
                raise ModelError(f"cannot read weights {file}: {exc}") from None
        self._prefixes = {key[: i + 1] for key in self._where for i, ch in enumerate(key) if ch == "."}
        self.config = self._config(raw)
        generation = self.folder / "generation_config.json"
        self.generation_config = SimpleNamespace(**_read_json(generation)) if generation.is_file() else None
        self.model = self._inner()
        # A tied output head is the embedding matrix itself (the same tensor object).
        self.lm_head = _Node(self, "lm_head." if "lm_head.weight" in self._where else "model.embed_tokens.")

    def _config(self, raw: dict[str, Any]) -> SimpleNamespace:
        kind, theta, factor = _rope(raw)
        hidden = int(raw["hidden_size"])
        heads = int(raw["num_attention_heads"])
        values = {
            "hidden_act": "silu",
            "num_key_value_heads": heads,
            "head_dim": raw.get("head_dim") or hidden // heads,
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 2048,
            "sliding_window": None,
            "tie_word_embeddings": "lm_head.weight" not in self._where,
            **raw,
            "rope_parameters": {"rope_type": kind, "rope_theta": theta, **({"factor": factor} if kind == "linear" else {})},
            "is_encoder_decoder": False,
            "_name_or_path": str(self.folder),
        }
        if raw.get("model_type") == "qwen2" and not raw.get("use_sliding_window"):
            values["sliding_window"] = None  # Qwen2 lists a window it does not use
        return SimpleNamespace(**values)

    def _inner(self) -> _Node:
        import torch

        cfg = self.config
        dim = int(cfg.head_dim)
        theta = float(cfg.rope_parameters["rope_theta"])
        inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim)
        inv_freq = inv_freq / float(cfg.rope_parameters.get("factor", 1.0))
        layers = [_Node(self, f"model.layers.{i}.", {
            "input_layernorm": _Node(self, f"model.layers.{i}.input_layernorm.", {"variance_epsilon": cfg.rms_norm_eps}),
            "post_attention_layernorm": _Node(self, f"model.layers.{i}.post_attention_layernorm.",
                                              {"variance_epsilon": cfg.rms_norm_eps}),
        }) for i in range(int(cfg.num_hidden_layers))]
        return _Node(self, "model.", {
            "layers": layers,
            "norm": _Node(self, "model.norm.", {"variance_epsilon": cfg.rms_norm_eps}),
            "rotary_emb": SimpleNamespace(inv_freq=inv_freq, attention_scaling=1.0),
        })

    # -- tensors ---------------------------------------------------------------------------

    def has_tensor(self, key: str) -> bool:
        return key in self._where

    def has_prefix(self, prefix: str) -> bool:
        return prefix in self._prefixes

    def tensor(self, key: str) -> torch.Tensor:
        """The tensor ``key`` in this checkpoint's dtype, read from disk on every call: the
        caller keeps what it needs, so matrices read only to be packed are freed after."""
        from safetensors import safe_open

        file = self._where[key]
        try:
            handle = self._handles.get(file)
            if handle is None:  # one open handle per file: reopening cost ~0.75 ms a tensor
                handle = self._handles[file] = safe_open(str(file), framework="pt")
            return handle.get_tensor(key).to(self.dtype)
        except Exception as exc:
            raise ModelError(f"cannot read {key} from {self._where[key]}: {exc}") from None

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.folder)!r}, {self.architecture}, dtype={self.dtype})"

