"""A lean prefill + decode loop for Llama-family causal LMs on CPU.

Hugging Face ``generate`` spends most of a small model's decode step in Python and in
generic machinery (cache objects, masks, logits processors, ~1,500 tensor ops a token for a
30-layer model). :class:`FastDecoder` keeps only the arithmetic:

- q/k/v and gate/up are fused into one matrix each, the attention scale is folded into the
  q rows, and q/k rows are permuted per head so that RoPE becomes one complex multiply;
- the KV cache is preallocated (grown in 256-token steps, kept between calls so a chat turn
  that extends the previous prompt only prefills the new tokens);
- prefill runs in fp32 GEMMs over chunks; decode runs in the weight format's own kernel
  (:mod:`agent.models.fastquant`) with about 25 tensor ops a layer.

Figures for the default model on the 2-core AVX2 development machine are in
:mod:`agent.models.fastbench`. Not thread-safe: one generation at a time per decoder (the
caller serializes); the weights are shared and read-only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError
from agent.models.checkpoint import Checkpoint
from agent.models.fastquant import (
    ACTIVATION_MODES,
    PACK_FORMAT,
    WEIGHT_MODES,
    PackedLayer,
    PackedLinear,
    StepThreads,
    ThreadProbe,
    activation_dtype,
    busy_machine_threads,
    intra_op_threads,
    kernel_isa,
    load_packed,
    model_fingerprint,
    norm_gain,
    on_int4_grid,
    pack_layers,
    pack_linear,
    save_packed,
    verify_packed,
)
from agent.models.prefill8 import PREFILL_MODES, Int8Prefill, prepare_int8_prefill
from agent.models.sampling import Sampler
from agent.paths import default_cache_dir

if TYPE_CHECKING:
    import torch

    from agent.options import GenerationOptions

__all__ = ["FastDecoder", "DEFAULT_WEIGHTS", "PREFILL_MODES", "ACTIVATION_MODES", "unsupported_reason"]

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "auto"
"""The recommended ``weights``: int4 when the checkpoint already sits on a 4-bit grid (a Q4_1
GGUF, like the embedded SmolLM2: lossless there, and the fastest decode), else int8."""

_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "MistralForCausalLM": "mistral"}
_ROPE_TYPES = {"default", "linear", "llama3"}  # static inverse frequencies only
_PREFILL_CHUNK = 512  # rows per prefill GEMM: large enough to be compute-bound, small enough for L2
_CACHE_STEP = 256  # the KV cache grows in these steps
_DENSE_ROWS = 32  # prefill chunks from this many rows on use fp32 GEMMs (crossover measured ~30)
_INT8_BATCH_ROWS = 12  # batched decode steps of this many rows use the W8A8 prefill layers (see decode_rows)
_DENSE_HEAD_ROWS = 4  # batched decode steps of this many rows take the head as a bf16 GEMM (see _dense_head)
_ATTENTION_ROWS = 64  # queries per attention call: causal work only (one 512-row call computes the
# whole square, the CPU flash kernel's key blocks being 512 wide), 1.45x faster at 500 tokens


def unsupported_reason(hf_model: Any) -> str | None:
    """Why :class:`FastDecoder` cannot run ``hf_model``, or None when it can."""
    lean = isinstance(hf_model, Checkpoint)  # read without transformers, weights checked on opening
    name = hf_model.architecture if lean else type(hf_model).__name__
    if name not in _ARCHITECTURES:
        return f"architecture {name} (supported: {', '.join(_ARCHITECTURES)})"
    cfg = hf_model.config
    if getattr(hf_model, "hf_quantizer", None) is not None:
        return "the model is quantized by a transformers quantizer"
    params = [] if lean else list(hf_model.parameters())
    if not lean and (not params or any(p.device.type != "cpu" or not p.is_floating_point() for p in params)):
        return "weights must be floating-point tensors on the CPU"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act} (only silu)"
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in _ROPE_TYPES:
        return f"rope type {rope_type!r} (supported: {', '.join(sorted(_ROPE_TYPES))})"
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
        return "sliding-window attention layers"
    rotary = getattr(getattr(hf_model, "model", None), "rotary_emb", None)
    if rotary is None or not hasattr(rotary, "inv_freq"):
        return "no rotary embedding module with inv_freq"
    return None


class FastDecoder:
    """Lean prefill + decode loop for Llama-family models (LlamaForCausalLM,
    Qwen2ForCausalLM, MistralForCausalLM when their config fits: no sliding window used,
    standard/llama3 rope) on CPU.

    ``weights``: ``"int8"`` (weight-only, per output channel), ``"int4"`` (weight-only,
    groups of 32, asymmetric; the output head stays int8); ``"bf16"``; ``"fp32"`` (exact:
    matches Hugging Face fp32 to ~1e-5); or ``"auto"`` (the default, :data:`DEFAULT_WEIGHTS`).
    ``activations``: the decode kernels' input dtype, ``"bf16"``, ``"fp32"`` or ``"auto"``
    (bf16 for every weights mode but fp32: the quantized kernels are 6-20x faster on it). ``max_seq_len`` caps the KV cache
    (default and upper bound: the model's ``max_position_embeddings``, and its sliding window
    if it has one, so the window never applies).

    ``prefill``: how prompts of 32+ tokens multiply: ``"fp32"`` (de-quantized weights), or
    ``"int8"`` (per-token smoothed int8 for q/k/v, o and gate/up; ~30% faster, prefill
    perplexity +1.3%; see :mod:`agent.models.prefill8`), which needs ``calibration_ids``
    (a tokenized :data:`~agent.models.prefill8.CALIBRATION_TEXT`) unless a cached
    calibration exists. ``"auto"`` (the default) is int8 for int4/int8 weights on x86 when
    it can be calibrated, else fp32.
    """

    @staticmethod
    def supports(hf_model: Any) -> bool:
        """True when the model can run here; False means: fall back to HF ``generate``."""
        try:
            return unsupported_reason(hf_model) is None
        except Exception:  # an exotic model object: not ours to run
            return False

    def __init__(self, hf_model: Any, *, weights: str = DEFAULT_WEIGHTS, max_seq_len: int | None = None,
                 threads: int | str | None = "auto", cache_dir: Path | None | bool = None,
                 prefill: str = "auto", calibration_ids: Sequence[int] | None = None, activations: str = "auto"):
        import torch

        reason = unsupported_reason(hf_model)
        if reason is not None:
            raise ModelError(f"FastDecoder cannot run this model: {reason}. Use Hugging Face generate for it.")
        if weights not in (*WEIGHT_MODES, "auto"):
            raise ModelError(f"unknown weights mode {weights!r}; use auto or one of {', '.join(WEIGHT_MODES)}")
        if activations not in ACTIVATION_MODES:
            raise ModelError(f"unknown activations {activations!r}; use one of {', '.join(ACTIVATION_MODES)}")
        if weights == "auto":
            weights = "int4" if on_int4_grid(hf_model) else "int8"
        if weights == "int4" and not _int4_kernel_available():
            log.warning("torch has no int4 CPU kernel here; the fast decoder uses int8 weights instead")
            weights = "int8"
        cfg = hf_model.config
        self.weights = weights
        """The weights mode in use ("auto" resolved)."""
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.hidden = int(cfg.hidden_size)
        self.vocab_size = int(cfg.vocab_size)
        limit = int(cfg.max_position_embeddings)
        if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
            limit = min(limit, int(cfg.sliding_window))  # the window never slides within it
        self.max_seq_len = limit if max_seq_len is None else max(2, min(int(max_seq_len), limit))
        self.eos_token_ids = _model_eos_ids(hf_model)
        self.last_stop_reason: str | None = None
        """Why the last generation ended: "eos", "length", "context" or "cancelled"."""
        self._act = activation_dtype(weights, activations)
        self._cache_dir = cache_dir
        """Where packed weights are kept between runs (None: llmos's cache dir; False: nowhere)."""
        if prefill not in PREFILL_MODES:
            raise ModelError(f"unknown prefill {prefill!r}; use one of {', '.join(PREFILL_MODES)}")
        with torch.inference_mode():
            self._load(hf_model, weights)
        self._k: torch.Tensor | None = None  # (layers, kv heads, capacity, head_dim)
        self._v: torch.Tensor | None = None
        self._views: list[tuple[torch.Tensor, ...]] = []  # per layer: K^T, V, K, V views of the cache
        self._cached_ids: list[int] = []  # the tokens whose K/V the cache holds, from position 0
        self._ticket = 0  # bumped by each call, so a stale generator cannot corrupt the cache
        self.threads = threads
        """Intra-op threads while this decoder computes: a number, None (torch's setting) or
        "auto": for a prefill torch's setting, but one thread while the machine is
        oversubscribed or a timed probe finds one thread as fast (:meth:`thread_count`); for decode steps whichever of
        one thread or torch's setting the last timed steps found faster (StepThreads)."""
        self._chooser: StepThreads | None = None
        self._probe = ThreadProbe()
        self._int8: Int8Prefill | None = None
        self._observe: Callable[[int, int, torch.Tensor], None] | None = None
        self._int8 = prepare_int8_prefill(self, prefill, hf_model, calibration_ids)
        log.info("fast decoder: weights %s, activations %s, prefill %s, kernels %s", self.weights,
                 self.activations, self.prefill, kernel_isa())

    @property
    def activations(self) -> str:
        """The decode kernels' input dtype in use: "bf16" or "fp32"."""
        import torch

        return "fp32" if self._act == torch.float32 else "bf16"

    @property
    def prefill(self) -> str:
        """The prefill products in use: "int8" (:mod:`agent.models.prefill8`) or "fp32"."""
        return "int8" if self._int8 is not None and self._int8.usable else "fp32"

    def _load(self, hf_model: Any, mode: str) -> None:
        import torch

        inner = hf_model.model
        # int4 stops at the layers: the output head is the most sensitive matrix (and the
        # embedded model's is 8-bit in the GGUF), so it stays int8 there.
        head_mode = "int8" if mode == "int4" else mode
        layers, self._lm_head = self._packed(hf_model, mode, head_mode)
        self._layers = layers
        self._eps = float(getattr(inner.norm, "variance_epsilon", getattr(inner.norm, "eps", 1e-6)))
        self._final_norm = inner.norm.weight.detach().to(torch.float32).contiguous()
        # Decode-time RMSNorm (see _decode): gains pre-scaled by sqrt(H), eps folded into c.
        root = self.hidden**0.5
        act = self._act
        self._kernels = [(n1 * root, q.kernel(act), o.kernel(act), n2 * root, gu.kernel(act), dn.kernel(act))
                         for n1, q, o, n2, gu, dn in layers]
        self._final_g = self._final_norm * root
        self._norm_c = torch.tensor((self.hidden * self._eps) ** 0.5)
        self._norm_buf = torch.empty(1, self.hidden, dtype=self._act)  # decode's norm output, reused
        self._embed = inner.embed_tokens.weight.detach()  # shared with the HF model, never copied
        self._lm_kernel = self._lm_head.kernel(act)
        self._head_dense: torch.Tensor | None = None  # see _dense_head
        self._downs: list[torch.Tensor] | None = None  # see _dense_downs
        self._intermediate = layers[0][4].out_features // 2
        rotary = inner.rotary_emb
        self._inv_freq = rotary.inv_freq.detach().to(torch.float32).clone()
        self._rope_scale = float(getattr(rotary, "attention_scaling", 1.0))
        self._freqs = torch.empty(0, self.head_dim // 2, dtype=torch.complex64)

    def _cache_file(self, hf_model: Any, name: str) -> Path | None:
        """Where this model's cached ``name`` lives (None: not cached: no local folder or
        caching is off)."""
        if self._cache_dir is False:
            return None
        fingerprint = model_fingerprint(hf_model)
        if fingerprint is None:
            return None
        base = self._cache_dir if isinstance(self._cache_dir, Path) else default_cache_dir()
        return base / "fast" / f"{fingerprint}-{name}.safetensors"

    def _packed(self, hf_model: Any, mode: str, head_mode: str) -> tuple[list[PackedLayer], PackedLinear]:
        """The packed layers and output head: from the cache when an earlier run packed the
        same weights the same way for the same kernels (quantizing takes ~1.5 s of a
        start-up), else packed now and cached for the next run. A cache that cannot be read
        or written is skipped; one whose products disagree with its own weights (a packing
        for another instruction set that slipped past the key) is logged and packed afresh."""
        import torch

        inner = hf_model.model
        norms = [(norm_gain(layer.input_layernorm), norm_gain(layer.post_attention_layernorm)) for layer in inner.layers]
        # Only quantized modes are worth keeping: fp32/bf16 pack in a blink, and fp32 shares the
        # HF model's memory, which a copy from disk would double.
        # One file per kernel ISA too, so machines of several kinds can share a cache folder.
        isa = kernel_isa()
        path = self._cache_file(hf_model, f"{mode}-{isa.lower()}") if mode in ("int4", "int8") else None
        key = {"format": str(PACK_FORMAT), "torch": torch.__version__, "mode": mode, "head_mode": head_mode,
               "model": model_fingerprint(hf_model) or "", "isa": isa}
        if path is not None:
            cached = load_packed(path, key, norms)
            problem = None if cached is None else verify_packed(cached[0])
            if cached is not None and problem is None:
                return cached
            if problem is not None:
                log.warning("the packed-weight cache %s does not match its weights (%s); packing afresh", path, problem)
        layers = pack_layers(inner.layers, self.n_heads, self.n_kv, self.head_dim, mode)
        head = pack_linear(hf_model.lm_head.weight, getattr(hf_model.lm_head, "bias", None), head_mode)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_packed(path, layers, head, key)
            except OSError as exc:  # a read-only cache: pack again next time
                log.debug("cannot cache packed weights at %s: %s", path, exc)
        return layers, head

    # -- int8 prefill ---------------------------------------------------------------------------

    def cache_file(self, hf_model: Any, name: str) -> Path | None:
        """Where this model's cached ``name`` lives (None: no local folder, or caching off)."""
        return self._cache_file(hf_model, name)

    def activation_maxima(self, ids: list[int]) -> dict[tuple[int, int], torch.Tensor]:
        """Each product's input channel maxima ``{(layer, slot): max |x|}`` over one fp32
        prefill of ``ids`` (every row through every layer); calibrates int8 prefill."""
        import torch

        maxima: dict[tuple[int, int], torch.Tensor] = {}

        def observe(layer: int, slot: int, x: torch.Tensor) -> None:
            m = x.abs().amax(0)
            seen = maxima.get((layer, slot))
            maxima[(layer, slot)] = m if seen is None else torch.maximum(seen, m)

        int8, self._int8, self._observe = self._int8, None, observe
        try:
            with torch.inference_mode():
                ids = ids[: self.max_seq_len]
                self._ensure_capacity(len(ids))
                self._cached_ids = []
                self._prefill(ids, 0, all_rows=True)
        finally:
            self._int8, self._observe = int8, None
            self.reset()
        return maxima

    @property
    def packed_layers(self) -> list[PackedLayer]:
        return self._layers

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights one decoded token reads: every packed matrix as its kernel holds
        it (int4, int8, bf16 or fp32, with scales), the norms, and one embedding row."""
        total = self._lm_head.kernel_bytes + self._final_norm.numel() * 4
        for n1, q, o, n2, gu, dn in self._layers:
            total += sum(lin.kernel_bytes for lin in (q, o, gu, dn)) + (n1.numel() + n2.numel()) * n1.element_size()
        return total + self.hidden * self._embed.element_size()

    # -- the KV cache -------------------------------------------------------------------------

    def _ensure_capacity(self, needed: int) -> None:
        """Make the cache hold ``needed`` positions, keeping what it holds."""
        import torch

        have = 0 if self._k is None else self._k.shape[2]
        if needed <= have:
            return
        cap = min(self.max_seq_len, -(-needed // _CACHE_STEP) * _CACHE_STEP)
        shape = (len(self._layers), self.n_kv, cap, self.head_dim)
        k, v = torch.empty(shape), torch.empty(shape)
        keep = len(self._cached_ids)
        if self._k is not None and keep:
            k[:, :, :keep] = self._k[:, :, :keep]
            v[:, :, :keep] = self._v[:, :, :keep]  # type: ignore[index]
        self._k, self._v = k, v
        self._freqs = self.rotations(cap)
        # Per-layer views the decode loop uses: K transposed for q @ K^T, V as is.
        self._views = [(k[i].transpose(1, 2), v[i], k[i], v[i]) for i in range(len(self._layers))]

    def rotations(self, positions: int) -> torch.Tensor:
        """RoPE rotations ``(positions, head_dim // 2)`` (complex64) for positions 0.., as in
        HF: fp32 angles, then cos/sin."""
        import torch

        angles = torch.arange(positions, dtype=torch.float32)[:, None] * self._inv_freq[None, :]
        return torch.polar(torch.full_like(angles, self._rope_scale), angles)

    # -- forward passes -----------------------------------------------------------------------

    def _prefill(self, ids: list[int], start: int, *, all_rows: bool = False,
                 cache: tuple[Sequence[tuple[torch.Tensor, ...]], torch.Tensor] | None = None) -> torch.Tensor:
        """Run ``ids`` at positions ``start...`` into the cache; return the final-normed hidden
        states (fp32) of every token when ``all_rows``, else of the last one.

        ``cache``: another KV cache to fill instead of this decoder's own (a batch slot's, see
        :mod:`agent.models.fastbatch`): its per-layer views as in ``_views`` and its RoPE rotations."""
        import torch

        outs = []
        for lo in range(0, len(ids), _PREFILL_CHUNK):
            chunk = ids[lo : lo + _PREFILL_CHUNK]
            x = self._chunk(torch.tensor(chunk), start + lo, last_only=not all_rows, cache=cache)
            outs.append(x if all_rows else x[-1:])
        x = torch.cat(outs) if all_rows else outs[-1]
        return torch.nn.functional.rms_norm(x, (self.hidden,), self._final_norm, self._eps)

    def _chunk(self, ids: torch.Tensor, pos: int, *, last_only: bool = False,
               cache: tuple[Sequence[tuple[torch.Tensor, ...]], torch.Tensor] | None = None) -> torch.Tensor:
        """One prefill chunk; returns the residual stream ``(C, hidden)`` in fp32 (with
        ``last_only``, ``(1, hidden)`` for the last token: the last layer then computes K/V
        for every row but the rest for that one row only).

        Long chunks multiply in int8 (:mod:`agent.models.prefill8`, when ``prefill`` is
        int8) or fp32 on de-quantized weights (compute-bound GEMMs); short ones, where
        de-quantizing every layer would cost more than it saves, use the decode kernels on all
        rows at once.
        """
        import torch
        import torch.nn.functional as F

        c, h, kv, d = len(ids), self.n_heads, self.n_kv, self.head_dim
        qk_dim, inter, end, act = (h + kv) * d, self._intermediate, pos + c, self._act
        dense = act == torch.float32 or c >= _DENSE_ROWS
        # (waits while the int8 weights are still being packed at start-up)
        int8 = self._int8.layers() if dense and self._int8 is not None else None
        observe, last = self._observe, len(self._layers) - 1

        def mm(i: int, slot: int, lin: PackedLinear, kernel: Callable[[torch.Tensor], torch.Tensor],
               x: torch.Tensor) -> torch.Tensor:
            if not dense:
                return kernel(x.to(act)).float()
            if int8 is not None and slot in int8[i]:
                return int8[i][slot](x)
            if observe is not None:
                observe(i, slot, x)
            return lin.dense(x)

        views, rotations = (self._views, self._freqs) if cache is None else cache
        x = self._embed[ids].to(torch.float32)
        freqs = rotations[pos:end, None, :]
        blocks = _attention_blocks(pos, c)
        for i, ((n1, qkv, o, n2, gu, down), (_, kq, ko, _, kgu, kd), (_, _, kc, vc)) in enumerate(zip(
                self._layers, self._kernels, views, strict=True)):
            y = mm(i, 1, qkv, kq, F.rms_norm(x, (self.hidden,), n1, self._eps))
            qk = torch.view_as_complex(y[:, :qk_dim].reshape(c, h + kv, d // 2, 2)) * freqs
            qk = torch.view_as_real(qk).reshape(c, h + kv, d).transpose(0, 1)
            kc[:, pos:end] = qk[h:]
            vc[:, pos:end] = y[:, qk_dim:].reshape(c, kv, d).transpose(0, 1)
            if last_only and i == last:  # only the last token's output is read
                x, blocks = x[-1:], [(c - 1, c, end, None, False)]
            parts = [F.scaled_dot_product_attention(qk[None, :h, lo:hi], kc[None, :, :keys], vc[None, :, :keys],
                                                    attn_mask=mask, is_causal=causal, scale=1.0, enable_gqa=True)
                     for lo, hi, keys, mask, causal in blocks]
            att = parts[0] if len(parts) == 1 else torch.cat(parts, 2)
            rows = att.shape[2]
            x = x + mm(i, 2, o, ko, att[0].transpose(0, 1).reshape(rows, h * d))
            g = mm(i, 4, gu, kgu, F.rms_norm(x, (self.hidden,), n2, self._eps))
            x = x + mm(i, 5, down, kd, F.silu(g[:, :inter]) * g[:, inter:])
        return x

    def _decode(self, token: int, pos: int,
                cache: tuple[Sequence[tuple[torch.Tensor, ...]], torch.Tensor] | None = None) -> torch.Tensor:
        """One token through every layer at ``pos``; returns fp32 logits ``(vocab,)``.

        ``cache``: another cache's per-layer views and rotations (see :meth:`decode_one`).

        The hot loop, ~25 small tensor ops a layer, each costing a few microseconds of
        dispatch, so every op counts: RMSNorm is ``x * (g * sqrt(H)) / hypot(|x|, sqrt(H * eps))``
        (4 ops writing straight into the activation dtype, where ``F.rms_norm`` decomposes
        into 7 on CPU and needs a cast after).
        """
        import torch
        import torch.nn.functional as F

        bmm, softmax, narrow, mul, div, hypot = torch.bmm, torch.softmax, torch.narrow, torch.mul, torch.div, torch.hypot
        as_complex, as_real, silu, vnorm = torch.view_as_complex, torch.view_as_real, F.silu, torch.linalg.vector_norm
        h, kv, d, act = self.n_heads, self.n_kv, self.head_dim, self._act
        group, nqk, qk_dim, inter = h // kv, h + kv, (h + kv) * d, self._intermediate
        cast, n, c, buf = act != torch.float32, pos + 1, self._norm_c, self._norm_buf
        views, rotations = (self._views, self._freqs) if cache is None else cache
        f = rotations[pos]
        x = self._embed.narrow(0, token, 1)
        if x.dtype != torch.float32:
            x = x.float()
        for (g1, qkv, o, g2, gu, down), (kt, vc, kc, _) in zip(self._kernels, views, strict=True):
            y = qkv(div(mul(x, g1), hypot(vnorm(x), c), out=buf)).view(-1)
            qk = as_real(as_complex(narrow(y, 0, 0, qk_dim).float().view(nqk, d // 2, 2)) * f).view(nqk, d)
            kc.select(1, pos).copy_(narrow(qk, 0, h, kv))
            vc.select(1, pos).copy_(narrow(y, 0, qk_dim, kv * d).view(kv, d))
            p = softmax(bmm(narrow(qk, 0, 0, h).view(kv, group, d), narrow(kt, 2, 0, n)), -1)
            a = bmm(p, narrow(vc, 1, 0, n)).view(1, h * d)
            x = x + o(a.to(act) if cast else a)
            g = gu(div(mul(x, g2), hypot(vnorm(x), c), out=buf))
            x = x + down(silu(narrow(g, 1, 0, inter)) * narrow(g, 1, inter, inter))
        return self._lm_kernel(div(mul(x, self._final_g), hypot(vnorm(x), c), out=buf)).view(-1).float()

    def decode_rows(self, tokens: torch.Tensor, positions: torch.Tensor, keys: Sequence[torch.Tensor],
                    values: Sequence[torch.Tensor], rotations: torch.Tensor) -> torch.Tensor:
        """One decode step of several sequences at once; returns fp32 logits ``(B, vocab)``.

        Row ``b`` feeds ``tokens[b]`` at ``positions[b]``; its keys and values live in row
        ``b`` of ``keys[layer]`` / ``values[layer]`` (each ``(B, kv heads, capacity,
        head_dim)``, positions below ``positions[b]`` filled, the rest ignored). The products
        run once over all rows (the weights are read once a step, whatever ``B``); attention
        runs over the longest row's keys with the others' tail masked, so each row sees
        exactly what :meth:`_decode` would show it alone (equal up to float summation order).
        From :data:`_INT8_BATCH_ROWS` rows the products change for speed, so a row's logits
        differ a little from a lone stream's: q/k/v, o and gate/up run on the int8 prefill's
        W8A8 layers, down and the head as bf16 GEMMs (int8 prefill's quality, docs/models.md).
        ``rotations``: :meth:`rotations` for at least the longest row. Used by
        :class:`~agent.models.fastbatch.SlotDecoder`.
        """
        import torch
        import torch.nn.functional as F

        bmm, softmax, mul, div, hypot = torch.bmm, torch.softmax, torch.mul, torch.div, torch.hypot
        as_complex, as_real, silu, vnorm = torch.view_as_complex, torch.view_as_real, F.silu, torch.linalg.vector_norm
        h, kv, d, act = self.n_heads, self.n_kv, self.head_dim, self._act
        b = int(tokens.shape[0])
        group, nqk, qk_dim, inter = h // kv, h + kv, (h + kv) * d, self._intermediate
        cast, c = act != torch.float32, self._norm_c
        n = int(positions.max()) + 1
        rows = torch.arange(b)
        f = rotations[positions][:, None, :]  # (B, 1, d/2)
        # -inf past each row's own last position: the padding of shorter rows
        hide = torch.zeros(b, 1, 1, n).masked_fill_((torch.arange(n)[None, :] > positions[:, None])[:, None, None, :],
                                                    float("-inf"))
        buf = torch.empty(b, self.hidden, dtype=act)
        x = self._embed[tokens]
        if x.dtype != torch.float32:
            x = x.float()
        # From _INT8_BATCH_ROWS rows on, q/k/v, o and gate/up run on the int8 prefill's W8A8
        # layers (FBGEMM; the int4 kernel's cost grows with the rows) and down on a bf16 copy:
        # a 16-row step 51 ms instead of 66, an 8-row step no faster (37 ms either way; 1 thread).
        int8 = self._batch_int8() if b >= _INT8_BATCH_ROWS else None
        downs = self._dense_downs() if int8 is not None else None
        for i, ((g1, qkv, o, g2, gu, down), kc, vc) in enumerate(zip(self._kernels, keys, values, strict=True)):
            normed = div(mul(x, g1), hypot(vnorm(x, 2, -1, True), c), out=buf)
            y = qkv(normed) if int8 is None else int8[i][1](normed.float())
            qk = as_real(as_complex(y[:, :qk_dim].float().reshape(b, nqk, d // 2, 2)) * f).view(b, nqk, d)
            kc[rows, :, positions] = qk[:, h:]
            vc[rows, :, positions] = y[:, qk_dim:].float().view(b, kv, d)
            # rows x kv heads as one batch of small products, on views of the cache (no copies)
            k, v = kc[:b, :, :n].reshape(b * kv, n, d), vc[:b, :, :n].reshape(b * kv, n, d)
            p = softmax(bmm(qk[:, :h].reshape(b * kv, group, d), k.transpose(1, 2)).view(b, kv, group, n) + hide, -1)
            a = bmm(p.view(b * kv, group, n), v).view(b, h * d)
            x = x + (o(a.to(act) if cast else a) if int8 is None else int8[i][2](a))
            normed = div(mul(x, g2), hypot(vnorm(x, 2, -1, True), c), out=buf)
            g = gu(normed) if int8 is None else int8[i][4](normed.float())
            hidden = silu(g[:, :inter]) * g[:, inter:]
            x = x + (down(hidden) if downs is None else F.linear(hidden.to(act), downs[i]))
        normed = div(mul(x, self._final_g), hypot(vnorm(x, 2, -1, True), c), out=buf)
        if b >= _DENSE_HEAD_ROWS and self._lm_head.mode in ("int8", "int4") and act != torch.float32:
            return F.linear(normed, self._dense_head(), self._lm_head.bias).float()
        return self._lm_kernel(normed).float()

    def _batch_int8(self) -> list[dict[int, Any]] | None:
        """The int8 prefill's per-layer W8A8 products (slots 1: q/k/v, 2: o, 4: gate/up) for
        batched steps, or None (no int8 prefill: fp32 prefill, fp32 activations, not x86)."""
        import torch

        if self._int8 is None or not self._int8.usable or self._act == torch.float32:
            return None
        layers = self._int8.layers()
        if layers is None or any(not all(slot in layer for slot in (1, 2, 4)) for layer in layers):
            return None
        return layers

    def _dense_downs(self) -> list[torch.Tensor]:
        """Each layer's down projection de-quantized to the activation dtype, made on first use
        (a batch of :data:`_INT8_BATCH_ROWS`+ rows): 53 MB for SmolLM2-135M."""
        if self._downs is None:
            self._downs = [layer[5].dense_weight().to(self._act).contiguous() for layer in self._layers]
        return self._downs

    def _dense_head(self) -> torch.Tensor:
        """The output head de-quantized to the activation dtype, made on first use (a batch of
        :data:`_DENSE_HEAD_ROWS`+ rows): torch's int8 kernel reads the 49k-row head once per
        row (1.8 ms at 1 row, 14.7 ms at 8, measured), a bf16 GEMM about once per step (4.6 ms
        at 8). Costs the head's size again in memory (56 MB for SmolLM2-135M)."""
        if self._head_dense is None:
            self._head_dense = self._lm_head.dense_weight().to(self._act).contiguous()
        return self._head_dense

    def decode_one(self, token: int, pos: int, views: Sequence[tuple[torch.Tensor, ...]],
                   rotations: torch.Tensor) -> torch.Tensor:
        """:meth:`_decode` on another cache (per layer ``(K^T, V, K, V)`` views, as
        :meth:`prefill_rows` takes): a batch of one row, without the batch's gathers and masks.
        Returns fp32 logits ``(vocab,)``."""
        return self._decode(token, pos, cache=(views, rotations))

    def prefill_rows(self, ids: list[int], start: int, views: Sequence[tuple[torch.Tensor, ...]],
                     rotations: torch.Tensor) -> torch.Tensor:
        """Prefill ``ids`` at positions ``start...`` into another cache (per layer ``(K^T, V,
        K, V)`` views of ``(kv heads, capacity, head_dim)`` tensors); returns the last token's
        fp32 logits ``(vocab,)``. For :class:`~agent.models.fastbatch.SlotDecoder`."""
        hidden = self._prefill(ids, start, cache=(views, rotations))
        return self._lm_kernel(hidden.to(self._act)).view(-1).float()

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """fp32 logits for final-normed hidden rows, a chunk at a time (the weight is large)."""
        import torch

        w = self._lm_head.dense_weight()
        return torch.cat([self._lm_head.dense(hidden[i : i + 256], w) for i in range(0, len(hidden), 256)])

    # -- public API -----------------------------------------------------------------------------

    def logits(self, input_ids: list[int]) -> torch.Tensor:
        """Logits ``(len(input_ids), vocab)`` in fp32 for every position (perplexity checks).

        Runs the prefill path (fp32 arithmetic on this decoder's weights), so int8/bf16
        figures measure the weight format, not the decode kernels' bf16 rounding.
        """
        import torch

        ids = self._check_ids(input_ids, 0)
        self._ticket += 1
        with torch.inference_mode(), intra_op_threads(self.thread_count()):
            self._ensure_capacity(len(ids))
            self._cached_ids = []
            hidden = self._prefill(ids, 0, all_rows=True)
            self._cached_ids = ids
            return self._head(hidden)

    def generate(self, input_ids: list[int], options: GenerationOptions, *,
                 should_stop: Callable[[], bool] | None = None,
                 eos_token_ids: Iterable[int] | None = None, constraint: Any = None) -> Iterator[int]:
        """Yield generated token ids one at a time (the EOS token itself is not yielded).

        Sampling follows ``options`` (temperature 0 = greedy; top_k, top_p, repetition
        penalty, seed, max_new_tokens); ``options.stop`` strings are the caller's job.
        ``eos_token_ids`` defaults to the model's own EOS ids; an empty set never stops at
        EOS. ``should_stop`` is polled before each token. The arguments are checked here,
        before the first ``next()``; ``last_stop_reason`` says afterwards why it ended.
        ``constraint`` (:class:`~agent.models.constrain.Constraint`): only the tokens its
        grammar allows are chosen (see :class:`~agent.models.sampling.Sampler`).
        """
        ids = self._check_ids(input_ids, 1)
        eos = self.eos_token_ids if eos_token_ids is None else frozenset(int(t) for t in eos_token_ids)
        self._ticket += 1
        return self._run(ids, options, should_stop, eos, self._ticket, constraint)

    def _run(self, ids: list[int], options: GenerationOptions, should_stop: Callable[[], bool] | None,
             eos: frozenset[int], ticket: int, constraint: Any = None) -> Iterator[int]:
        import torch

        self.last_stop_reason = None
        sampler = Sampler(options, self.vocab_size, ids, constraint)
        self._check_ticket(ticket)
        threads = self.thread_count()  # for the prefill; decode steps may choose their own
        with torch.inference_mode(), intra_op_threads(threads):
            logits = self._start(ids, options.max_new_tokens)
        chooser = self._step_threads()
        pos, reason = len(ids), "length"
        for i in range(options.max_new_tokens):
            if should_stop is not None and should_stop():
                reason = "cancelled"
                break
            with intra_op_threads(1):  # vocabulary-sized vectors: a parallel region costs more than it saves
                token = sampler(logits)
            if token in eos:
                reason = "eos"
                break
            yield token
            if i + 1 == options.max_new_tokens:
                break
            if pos >= self.max_seq_len:
                reason = "context"
                break
            self._check_ticket(ticket)
            if chooser is None:
                with torch.inference_mode(), intra_op_threads(threads):
                    logits = self._decode(token, pos)
            else:
                with torch.inference_mode(), intra_op_threads(chooser.next()):
                    began = time.perf_counter()
                    logits = self._decode(token, pos)
                    chooser.record(time.perf_counter() - began)
            self._cached_ids.append(token)
            pos += 1
        self.last_stop_reason = reason

    def thread_count(self) -> int | None:
        """The intra-op threads a prefill (or a batched step) runs with: ``threads`` resolved
        (None: torch's setting). ``"auto"``: one thread while the machine is oversubscribed
        (:func:`~agent.models.fastquant.busy_machine_threads`) or while a quick timed product
        finds several threads no faster (:class:`~agent.models.fastquant.ThreadProbe`), else
        torch's setting."""
        import torch

        if self.threads == "auto":
            busy = busy_machine_threads()
            if busy is not None:
                return busy
            many = torch.get_num_threads()
            return None if self._probe.threads(many) == many else 1
        return None if self.threads is None else int(self.threads)

    def probe_threads(self, many: int) -> int:
        """1 or ``many``: what a quick timed product finds faster now (:class:`ThreadProbe`)."""
        return self._probe.threads(many)

    def _step_threads(self) -> StepThreads | None:
        """With ``threads="auto"`` and more than one intra-op thread: the decode steps' own
        chooser (see :class:`~agent.models.fastquant.StepThreads`), kept across calls."""
        import torch

        if self.threads != "auto" or torch.get_num_threads() < 2:
            return None
        many = torch.get_num_threads()
        if self._chooser is None or self._chooser.many != many:
            self._chooser = StepThreads(many, probe_threads=self._probe.threads)
        return self._chooser

    def _check_ticket(self, ticket: int) -> None:
        if ticket != self._ticket:
            raise ModelError("a newer generate() or logits() call on this FastDecoder took its KV cache; "
                             "finish or close one generation before starting the next")

    def reset(self) -> None:
        """Forget the cached prefix and free the KV cache (the next call prefills everything)."""
        self._ticket += 1
        self._cached_ids = []
        self._k = self._v = None
        self._views = []

    def _start(self, ids: list[int], max_new: int) -> torch.Tensor:
        """Prefill what the cache does not already hold of ``ids``; return the next logits."""
        reuse = _common_prefix(self._cached_ids, ids)
        reuse = min(reuse, len(ids) - 1)  # prefill at least one token, for its logits
        self._cached_ids = self._cached_ids[:reuse]
        self._ensure_capacity(min(self.max_seq_len, len(ids) + max_new))
        hidden = self._prefill(ids[reuse:], reuse)
        self._cached_ids = list(ids)
        return self._lm_kernel(hidden.to(self._act)).view(-1).float()

    def _check_ids(self, input_ids: list[int], room: int) -> list[int]:
        ids = [int(t) for t in input_ids]
        if not ids:
            raise ModelError("input_ids is empty; pass at least one token (e.g. the BOS token)")
        if len(ids) + room > self.max_seq_len:
            raise ModelError(f"the prompt has {len(ids)} tokens but this decoder holds at most "
                             f"{self.max_seq_len}; trim the history or raise max_seq_len")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ModelError(f"token ids {bad[:5]} are outside the vocabulary (0..{self.vocab_size - 1}); "
                             "the tokenizer does not match the model")
        return ids


def _int4_kernel_available() -> bool:
    import torch

    return hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(torch, "_convert_weight_to_int4pack_for_cpu")


def _attention_blocks(pos: int, c: int) -> list[tuple[int, int, int, Any, bool]]:
    """Query blocks of a chunk of ``c`` rows at ``pos``: (first row, end row, keys, mask,
    is_causal). Each block of :data:`_ATTENTION_ROWS` queries attends to the keys up to its
    last row, so the work above the diagonal is skipped block by block."""
    import torch

    blocks: list[tuple[int, int, int, Any, bool]] = []
    for lo in range(0, c, _ATTENTION_ROWS):
        hi = min(c, lo + _ATTENTION_ROWS)
        keys = pos + hi
        if pos + lo == 0:  # a square block from position 0: plain causal
            blocks.append((lo, hi, keys, None, True))
        else:  # row r sees keys up to pos + r
            mask = torch.arange(keys)[None, :] <= torch.arange(pos + lo, keys)[:, None]
            blocks.append((lo, hi, keys, mask, False))
    return blocks


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _model_eos_ids(hf_model: Any) -> frozenset[int]:
    """EOS ids from the generation config, else the model config (int or list)."""
    ids: set[int] = set()
    for cfg in (getattr(hf_model, "generation_config", None), hf_model.config):
        value = getattr(cfg, "eos_token_id", None) if cfg is not None else None
        if value is not None:
            ids.update([value] if isinstance(value, int) else value)
    return frozenset(int(i) for i in ids)


