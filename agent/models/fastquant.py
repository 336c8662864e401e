"""The numeric pieces of :mod:`agent.models.fastpath`: weight formats, the token sampler and
the thread policy for the kernels.

A linear layer is stored as fp32, bf16, int8 or int4 (:class:`PackedLinear`).

Decoding one token is a chain of matrix-vector products, so its speed is set by how many
weight bytes cross the memory bus: int8 moves a quarter of fp32, int4 an eighth. Prefill
multiplies many tokens at once and is compute-bound instead, and on AVX2 CPUs without native
bf16 or int8 dot products (no AVX512-BF16, AMX or VNNI) the fastest way to do that is plain
fp32 GEMM. So every format offers two products:

- a *kernel* for a few rows, in the decoder's activation dtype: int8 ->
  ``torch._weight_int8pack_mm`` and int4 -> ``torch._weight_int4pack_mm_for_cpu``, both
  fastest with bf16 activations (with fp32 activations they are 6-20x slower);
- ``dense(x)``: for many rows, in fp32 on a temporary fp32 copy of the weight
  (de-quantizing costs ~1 ms a layer, far less than the GEMM it enables).

int8 is symmetric per output channel. int4 is asymmetric in groups of 32 inputs
(``w = (q - 8) * scale + zero``, q in 0..15), which is exactly GGUF's Q4_1 layout: for the
embedded SmolLM2 (a Q4_1 GGUF) it reproduces the weights up to bf16 rounding of the scales.

What the kernels require (torch 2.13, ``aten/src/ATen/native/cpu/int{4,8}mm_kernel.cpp``),
which every caller here guarantees:

- the int8 kernel's AVX512 variant reads activation rows with *aligned* 256-bit loads and
  weight rows with aligned 128-bit loads, 16 inputs at a time: the weight must start on a
  16-byte boundary, the activation on a 32-byte one, and ``in_features`` be a multiple of
  16 (else it reads past each row: wrong sums or a segmentation fault). Tensors read from
  a safetensors file sit at the file's byte offsets, so :func:`aligned` copies them into
  fresh (64-byte aligned) storage, and :meth:`PackedLinear.kernel` pads other widths;
- the int4 packed layout depends on the instruction set torch dispatches to (blocks of 64
  output rows for AVX512, 32 for AVX2, plain pairs otherwise; ``ATEN_CPU_CAPABILITY``
  changes it): a packing is only valid under the :func:`kernel_isa` that made it, so the
  packed-weight cache is keyed by it and checked against reference products on load.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError

if TYPE_CHECKING:
    import torch


__all__ = ["WEIGHT_MODES", "ACTIVATION_MODES", "PackedLinear", "aligned", "kernel_isa", "int8_kernel",
           "verify_packed", "pack_linear", "quantize_int8", "quantize_int4",
           "activation_dtype", "on_int4_grid", "int4_fits", "pack_layers", "PackedLayer", "busy_machine_threads", "StepThreads",
           "ThreadProbe",
           "intra_op_threads", "norm_gain", "save_packed", "load_packed", "model_fingerprint", "PACK_FORMAT"]

WEIGHT_MODES = ("int8", "int4", "bf16", "fp32")
"""Formats :func:`pack_linear` accepts."""

ACTIVATION_MODES = ("auto", "bf16", "fp32")
"""What the decode kernels take their input in: ``auto`` is fp32 for fp32 weights, else bf16."""

INT4_GROUP = 32
INT8_K_STEP = 16  # the int8 kernel's AVX512 variant reads 16 inputs a step (see the module docstring)


def activation_dtype(mode: str, activations: str = "auto") -> torch.dtype:
    """The dtype the kernels of weights ``mode`` take their input in: ``activations``
    (``bf16`` or ``fp32``), or for ``auto`` fp32 with fp32 weights and bf16 otherwise (the
    quantized kernels run 6-20x faster on bf16 input, on every x86 CPU)."""
    import torch

    if activations not in ACTIVATION_MODES:
        raise ModelError(f"unknown activations {activations!r}; use one of {', '.join(ACTIVATION_MODES)}")
    if activations == "auto":
        return torch.float32 if mode == "fp32" else torch.bfloat16
    return torch.float32 if activations == "fp32" else torch.bfloat16


def kernel_isa() -> str:
    """The instruction-set variant torch's CPU kernels dispatch to in this process
    (``AVX512``, ``AVX2``, ``DEFAULT``, ...; ``ATEN_CPU_CAPABILITY`` can lower it). The int4
    packed layout depends on it."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # an older or exotic build: no dispatch to tell apart
        return "unknown"


def aligned(t: torch.Tensor) -> torch.Tensor:
    """``t`` when it is contiguous and starts on a 64-byte boundary, else a copy in fresh
    storage (torch's CPU allocator aligns to 64 bytes). Kernels with aligned loads get
    nothing else: a tensor read from a safetensors file starts wherever the file put it."""
    import torch

    if t.is_contiguous() and t.data_ptr() % 64 == 0:
        return t
    return torch.empty(t.shape, dtype=t.dtype).copy_(t)


def int8_kernel(weight: torch.Tensor, scales: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> x @ (weight * scales[:, None]).T`` through ``torch._weight_int8pack_mm`` for
    int8 ``weight`` ``(out, in)``; ``x`` in the dtype of ``scales``. The weight is aligned
    and, when ``in`` is not a multiple of 16, zero-padded (and each ``x`` with it), which
    the kernel's AVX512 variant needs; the common widths pay nothing for that."""
    import torch
    import torch.nn.functional as F

    pad = -int(weight.shape[1]) % INT8_K_STEP
    w = aligned(F.pad(weight, (0, pad)) if pad else weight)
    mm = functools.partial(torch._weight_int8pack_mm, mat2=w, scales=aligned(scales))
    if not pad:
        return mm
    return lambda x: mm(F.pad(x, (0, pad)))


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``weight ~= q * scale[:, None]``.

    Returns ``(q, scale)`` with ``q`` int8 of the weight's shape and ``scale`` fp32 per row.
    A row's scale comes from its largest magnitude; rows of zeros get scale 1 to avoid
    dividing by zero. The scale is rounded to a bf16 value *before* quantizing, because the
    decode kernel takes its scales in bf16: rounding afterwards would bias a whole row by up
    to 0.4%, while rounding first keeps fp32 prefill and bf16 decode on the same weights.
    """
    import torch

    w = weight.detach().to(torch.float32)
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    scale = scale.to(torch.bfloat16).to(torch.float32)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.contiguous(), scale


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric int4 in groups of ``group`` inputs: ``w ~= (q - 8) * scale + zero``.

    Returns ``(q, scale, zero)``: ``q`` uint8 in 0..15 of the weight's shape, ``scale`` and
    ``zero`` fp32 ``(out, in / group)``, both rounded to bf16 values before ``q`` is chosen
    (the kernel reads them in bf16), so the fp32 and bf16 paths share the same weights.
    """
    import torch

    w = weight.detach().to(torch.float32)
    n, k = w.shape
    g = w.view(n, k // group, group)
    lo, hi = g.amin(-1), g.amax(-1)
    scale = torch.where(hi > lo, (hi - lo) / 15.0, torch.ones_like(lo)).to(torch.bfloat16).float()
    zero = (lo + 8 * scale).to(torch.bfloat16).float()
    q = torch.round((g - zero[..., None]) / scale[..., None] + 8).clamp_(0, 15).to(torch.uint8)
    return q.view(n, k), scale, zero


@dataclass(frozen=True)
class PackedLinear:
    """One linear layer (``y = x @ W.T + b``) in a storage ``mode``, with its two products.

    ``weight`` is what the kernel reads: fp32/bf16 ``(out, in)``, int8 ``(out, in)``, or
    int4 in torch's packed CPU layout. ``scale`` (fp32; per row for int8, per group for
    int4), ``zero`` and ``nibbles`` (int4: two weights a byte, a plain layout for
    de-quantizing) serve ``dense``; ``kernel_scales`` are the kernel's bf16 scales.
    """

    mode: str
    weight: torch.Tensor
    bias: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    kernel_scales: torch.Tensor | None = None
    zero: torch.Tensor | None = None
    nibbles: torch.Tensor | None = None

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel_bytes(self) -> int:
        """Bytes the one-token product reads: the weight as the kernel holds it, its scales, the bias."""
        return sum(t.numel() * t.element_size() for t in (self.weight, self.kernel_scales, self.bias)
                   if t is not None)

    def dense_weight(self) -> torch.Tensor:
        """The weight as fp32 ``(out, in)``; a temporary copy unless the mode is fp32."""
        import torch

        if self.mode == "int8":
            assert self.scale is not None
            return self.weight.to(torch.float32).mul_(self.scale[:, None])
        if self.mode == "int4":
            assert self.nibbles is not None and self.scale is not None and self.zero is not None
            n, groups = self.scale.shape
            q = torch.stack([self.nibbles & 15, self.nibbles >> 4], -1).view(n, groups, -1).to(torch.float32)
            return q.sub_(8).mul_(self.scale[..., None]).add_(self.zero[..., None]).view(n, -1)
        return self.weight.to(torch.float32)

    def dense(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """fp32 product for many rows; pass ``weight`` (from :meth:`dense_weight`) to reuse it."""
        import torch.nn.functional as F

        return F.linear(x, self.dense_weight() if weight is None else weight, self.bias)

    def kernel(self, act: torch.dtype | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A callable ``x -> y`` with the weight bound, for the per-token hot loop; ``x`` and
        ``y`` in ``act`` (default: :func:`activation_dtype` of the mode). A
        ``functools.partial`` over the aten op keeps the per-call Python cost to one C call.
        The caller hands it contiguous rows starting on a 32-byte boundary (any fresh tensor)."""
        import torch
        import torch.nn.functional as F

        act = activation_dtype(self.mode) if act is None else act
        bias = None if self.bias is None else self.bias.to(act)
        if self.mode not in ("int8", "int4"):
            weight = self.weight if self.weight.dtype == act else self.weight.to(act)
            return functools.partial(F.linear, weight=weight, bias=bias)
        assert self.kernel_scales is not None
        scales = self.kernel_scales.to(act)  # bf16-exact values either way
        if self.mode == "int8":
            mm = int8_kernel(self.weight, scales)
        else:
            mm = functools.partial(torch._weight_int4pack_mm_for_cpu, mat2=aligned(self.weight), qGroupSize=INT4_GROUP,
                                   qScaleAndZeros=aligned(scales))
        if bias is None:
            return mm
        return lambda x: mm(x).add_(bias)


PackedLayer = tuple["torch.Tensor", PackedLinear, PackedLinear, "torch.Tensor", PackedLinear, PackedLinear]
"""A decoder layer: (input norm gain, qkv, o, post-attention norm gain, gate_up, down)."""


def int4_fits(weight: torch.Tensor) -> bool:
    """Whether torch's int4 CPU kernel takes this shape (out % 16, in % group)."""
    n, k = weight.shape
    return n % 16 == 0 and k % INT4_GROUP == 0


def on_int4_grid(hf_model: Any, tolerance: float = 1e-2) -> bool:
    """Whether the model's linear weights already are 4-bit in groups of 32 (``d * q + m``,
    q in 0..15, as GGUF Q4_1 stores them), so int4 loses nothing. Checks a few matrices.

    Weights held in bf16 or fp16 (a Q4_1 GGUF converted to a bf16 checkpoint, as the embedded
    model is) are on the grid only up to their own rounding: each value may sit half an ulp
    off, which is up to ~0.03 of a 4-bit step for bf16. That slack is allowed on top of
    ``tolerance``; weights not on a grid sit anywhere up to half a step off (0.5) and fail."""
    import torch

    layers = hf_model.model.layers
    picks = [layers[0].self_attn.q_proj, layers[0].mlp.down_proj, layers[-1].mlp.gate_proj]
    for linear in picks:
        w = linear.weight.detach()
        if not int4_fits(w):
            return False
        g = w.to(torch.float32).view(w.shape[0], -1, INT4_GROUP)
        lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
        step = torch.where(hi > lo, (hi - lo) / 15.0, torch.ones_like(lo))
        steps = (g - lo) / step
        # the storage's rounding, in steps: |value| * eps for the value, lo and hi each
        eps = torch.finfo(w.dtype).eps if w.dtype in (torch.bfloat16, torch.float16) else 0.0
        slack = tolerance + 2 * eps * g.abs().amax(-1, keepdim=True) / step
        if bool(((steps - steps.round()).abs() > slack).any()):
            return False
    return True


def pack_linear(weight: torch.Tensor, bias: torch.Tensor | None, mode: str) -> PackedLinear:
    """Store ``weight`` (``(out, in)``, any float dtype) and ``bias`` in ``mode``.

    fp32 reuses the given tensor when it already is contiguous fp32 (no copy), so a decoder
    in fp32 mode shares memory with the Hugging Face model it came from. A shape the int4
    kernel does not take is stored as int8.
    """
    import torch

    b = None if bias is None else bias.detach().to(torch.float32).contiguous()
    w = weight.detach()
    if mode == "fp32":
        return PackedLinear(mode, w.to(torch.float32).contiguous(), b)
    if mode == "bf16":
        return PackedLinear(mode, w.to(torch.bfloat16).contiguous(), b)
    if mode == "int4" and int4_fits(w):
        q, scale, zero = quantize_int4(w)
        packed = torch._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1)
        kernel_scales = torch.stack([scale.t(), zero.t()], -1).to(torch.bfloat16).contiguous()
        nibbles = (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()
        return PackedLinear(mode, packed, b, scale, kernel_scales, zero, nibbles)
    if mode in ("int8", "int4"):
        q8, scale = quantize_int8(w)
        return PackedLinear("int8", q8, b, scale, scale.to(torch.bfloat16))
    raise ModelError(f"unknown weights mode {mode!r}; use one of {', '.join(WEIGHT_MODES)}")


def pack_layers(layers: Sequence[Any], n_heads: int, n_kv: int, head_dim: int, mode: str) -> list[PackedLayer]:
    """Each HF decoder layer as ``(norm1, qkv, o, norm2, gate_up, down)`` packed in ``mode``.

    q/k/v and gate/up become one matrix each (one kernel call instead of three or two), the
    attention scale is folded into the q rows, and q/k rows are permuted per head so that
    dim j sits next to j + d/2 (the pairs HF's ``rotate_half`` rotates): RoPE then is one
    complex multiply, and q.k is unchanged because q and k are permuted alike.
    """
    import torch

    d = head_dim
    perm = torch.arange(d).view(2, d // 2).t().reshape(-1)

    def rope_rows(w: torch.Tensor | None, heads: int, scale: float = 1.0) -> torch.Tensor | None:
        if w is None:
            return None
        w = w.detach().to(torch.float32)
        return (w.reshape(heads, d, -1)[:, perm].reshape(w.shape) * scale).contiguous()

    def cat(*ts: torch.Tensor | None) -> torch.Tensor | None:
        return None if any(t is None for t in ts) else torch.cat([t.detach().float() for t in ts])  # type: ignore[union-attr]

    def weight(*ts: torch.Tensor | None) -> torch.Tensor:
        out = cat(*ts)
        assert out is not None  # weights, unlike biases, always exist
        return out

    packed = []
    for layer in layers:
        a, m = layer.self_attn, layer.mlp
        scaling = float(getattr(a, "scaling", d**-0.5))
        qkv = pack_linear(
            weight(rope_rows(a.q_proj.weight, n_heads, scaling), rope_rows(a.k_proj.weight, n_kv), a.v_proj.weight),
            cat(rope_rows(_bias(a.q_proj), n_heads, scaling), rope_rows(_bias(a.k_proj), n_kv), _bias(a.v_proj)),
            mode)
        gate_up = pack_linear(weight(m.gate_proj.weight, m.up_proj.weight), cat(_bias(m.gate_proj), _bias(m.up_proj)), mode)
        packed.append((norm_gain(layer.input_layernorm), qkv, pack_linear(a.o_proj.weight, _bias(a.o_proj), mode),
                       norm_gain(layer.post_attention_layernorm), gate_up,
                       pack_linear(m.down_proj.weight, _bias(m.down_proj), mode)))
    return packed


def _bias(linear: Any) -> torch.Tensor | None:
    return None if getattr(linear, "bias", None) is None else linear.bias.detach()


def norm_gain(module: Any) -> torch.Tensor:
    import torch

    return module.weight.detach().to(torch.float32).contiguous()


# -- threads ---------------------------------------------------------------------------------


def busy_machine_threads() -> int | None:
    """1 when other work oversubscribes the CPUs (1-minute load above CPUs + 1), else None.

    Every matmul here is a parallel region that waits for all its threads; on a busy machine
    one of them is often descheduled and a 2-thread decode measured 5-10x slower than a
    1-thread one (1.3 s vs 0.16 s a token at load 15 on 2 cores). On an idle machine our own
    threads add at most the CPU count to the load, so this never fires on our account.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if load > cpus + 1 else None


class ThreadProbe:
    """Whether several intra-op threads pay off *right now*, by timing a small product.

    A prefill is a few hundred large parallel regions. While another process keeps a core
    busy, a second thread is often descheduled and every region waits for it: a 40-token
    prefill measured 3-4 s with two threads at load 2.5-3 on 2 cores, 0.13 s with one, and the
    load average (:func:`busy_machine_threads`) only says so above load 3. So before a prefill
    the decoder asks this probe: ``reps`` runs of a ``(64, 576) x (576, 576)`` product (~0.3 ms
    each) with one thread, ``reps + 2`` with ``many``; several threads win when their slowest
    run is at least ``margin`` times faster than one thread's fastest. The answer holds for ``ttl_s`` seconds (a chat's prefills
    come seconds apart; the machine's load changes slower)."""

    def __init__(self, *, reps: int = 3, margin: float = 1.25, ttl_s: float = 5.0) -> None:
        self.reps, self.margin, self.ttl_s = reps, margin, ttl_s
        self._answer: tuple[float, int, int] | None = None  # (when, many, choice)
        self._operands: tuple[torch.Tensor, torch.Tensor] | None = None

    def threads(self, many: int) -> int:
        """1 or ``many``: whichever the probe found faster (``many`` when it is 1)."""
        import time

        if many < 2:
            return many
        now = time.monotonic()
        if self._answer is not None and self._answer[1] == many and now - self._answer[0] < self.ttl_s:
            return self._answer[2]
        one, several = self._time(1, best=True), self._time(many, best=False)
        choice = many if several * self.margin <= one else 1
        self._answer = (time.monotonic(), many, choice)
        return choice

    def _time(self, count: int, *, best: bool) -> float:
        """The fastest (``best``) or the slowest of ``reps`` runs with ``count`` threads: a
        stall in any one run of several threads is what a long prefill would meet hundreds of
        times, so several threads must win on their worst run against one thread's best."""
        import time

        import torch

        if self._operands is None:
            g = torch.Generator().manual_seed(0)
            self._operands = torch.randn(64, 576, generator=g), torch.randn(576, 576, generator=g)
        a, b = self._operands
        times = []
        with intra_op_threads(count):
            for _ in range(self.reps + (0 if best else 2)):
                began = time.perf_counter()
                torch.mm(a, b)
                times.append(time.perf_counter() - began)
        return min(times) if best else max(times)


class StepThreads:
    """Chooses the intra-op thread count for decode steps by timing them.

    A one-token step is ~150 small parallel regions, each waiting for all its threads. On an
    idle 2-core machine two threads decode faster than one; while another process keeps a
    core busy, a second thread is often descheduled and the same step runs 3-30x *slower*
    (measured here at load 3: 0.6-11 tokens/s with two threads, 28-31 with one). The 1-minute
    load average reacts too late and cannot tell our own threads from others'.

    So the steps decide: ``probe`` steps with one thread, ``probe`` with ``many``, then the
    faster (by each side's fastest step, which ignores a step that was merely preempted) for
    ``period`` steps, then probe again. A ``many`` probe step over 3x one thread's best ends
    the probe at once. While one thread keeps winning, the period doubles (up to
    ``max_period``): a losing multi-thread probe is the expensive kind. The state lives on
    the decoder, so it carries over from one reply to the next.
    """

    def __init__(self, many: int, *, probe: int = 3, period: int = 32, max_period: int = 512,
                 probe_threads: Callable[[int], int] | None = None) -> None:
        self.many = max(1, many)
        self.probe_threads = probe_threads
        """A cheap check (:meth:`ThreadProbe.threads`) asked before a many-thread probe step;
        when it answers 1 the step probes are skipped and one thread is chosen."""
        self.probe = probe
        self.base_period = period
        self.max_period = max_period
        self.period = period
        self.choice = self.many
        self._plan = self._probes()
        self._times: dict[int, list[float]] = {}
        self._countdown = 0
        self._current = self.many
        self._probing = False

    def _probes(self) -> list[int]:
        return [1] * self.probe + [self.many] * self.probe if self.many > 1 else []

    def next(self) -> int:
        """The thread count for the next step."""
        if self._plan and self._plan[0] == self.many and self.probe_threads is not None \
                and self.probe_threads(self.many) == 1:
            # a quick probe says a second thread would stall: skip the costly step probes
            self._plan = []
            self._times.pop(self.many, None)
            self._decide()
        self._probing = bool(self._plan)
        self._current = self._plan.pop(0) if self._plan else self.choice
        return self._current

    def record(self, seconds: float) -> None:
        """How long the step run with :meth:`next`'s count took."""
        if self.many == 1:
            return
        if not self._probing:
            self._countdown -= 1
            if self._countdown <= 0:
                self._plan = self._probes()
            return
        self._times.setdefault(self._current, []).append(seconds)
        one = self._times.get(1)
        if self._current == self.many and one and seconds > 3 * min(one):
            self._plan = []  # two threads are losing badly: no more of that this round
        if not self._plan:
            self._decide()

    def _decide(self) -> None:
        one, many = self._times.get(1), self._times.get(self.many)
        if one and (not many or min(one) < min(many)):
            self.period = min(self.max_period, self.period * 2) if self.choice == 1 else self.base_period
            self.choice = 1
        else:
            self.choice = self.many
            self.period = self.base_period
        self._countdown = self.period
        self._times = {}


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the caller's setting
    (cheap: ~0.1 us; the thread pool stays)."""
    import torch

    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- packed weights on disk ------------------------------------------------------------------

PACK_FORMAT = 2
"""Bumped whenever what :func:`pack_layers` computes changes, so old cache files are ignored
(2: keyed by :func:`kernel_isa` and verified on load)."""

_FIELDS = ("weight", "bias", "scale", "kernel_scales", "zero", "nibbles")
_SLOTS = {1: "qkv", 2: "o", 4: "gate_up", 5: "down"}  # the PackedLinear places in a PackedLayer


def model_fingerprint(hf_model: Any) -> str | None:
    """A key for the weights a model was loaded from: its local folder's weight files (names,
    sizes, modification times). None when it did not come from a local folder."""
    import hashlib
    from pathlib import Path

    folder = Path(str(getattr(hf_model.config, "_name_or_path", "") or ""))
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") or p.name == "config.json")
    if not files:
        return None
    h = hashlib.sha256(str(folder.resolve()).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:24]


def save_packed(path: os.PathLike[str] | str, layers: Sequence[PackedLayer], head: PackedLinear,
                key: dict[str, str]) -> None:
    """Write the packed matrices of ``layers`` and ``head`` to ``path`` (safetensors), whole or
    not at all (a temporary file renamed into place)."""
    tensors: dict[str, torch.Tensor] = {}
    modes: dict[str, str] = {}

    def put(prefix: str, lin: PackedLinear) -> None:
        modes[prefix] = lin.mode
        for name in _FIELDS:
            value = getattr(lin, name)
            if value is not None:
                tensors[f"{prefix}.{name}"] = value.contiguous()

    for i, layer in enumerate(layers):
        for slot, name in _SLOTS.items():
            put(f"{i}.{name}", layer[slot])  # type: ignore[arg-type]
    put("head", head)
    meta = {**key, "modes": ",".join(f"{k}={v}" for k, v in modes.items()), "layers": str(len(layers))}
    save_atomically(path, tensors, meta)


def save_atomically(path: os.PathLike[str] | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write ``tensors`` as a safetensors file whole or not at all (:func:`agent.files.atomic_write`:
    temp file, fsync, rename), so a reader never meets a torn cache file."""
    from pathlib import Path

    from safetensors.torch import save

    from agent.files import atomic_write

    atomic_write(Path(path), save(tensors, metadata=metadata))


def load_packed(path: os.PathLike[str] | str, key: dict[str, str], norms: Sequence[tuple[torch.Tensor, torch.Tensor]]
                ) -> tuple[list[PackedLayer], PackedLinear] | None:
    """The layers and head :func:`save_packed` wrote, if ``path`` holds them for ``key``
    (and ``norms``: each layer's two norm gains, which are not stored); else None."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            meta = f.metadata() or {}
            if any(meta.get(k) != v for k, v in key.items()) or meta.get("layers") != str(len(norms)):
                return None
            modes = dict(item.split("=", 1) for item in meta["modes"].split(","))
            names = set(f.keys())

            def get(prefix: str) -> PackedLinear:
                # aligned: the kernels' loads need it, and the file's offsets do not give it
                fields = {n: aligned(f.get_tensor(f"{prefix}.{n}")) if f"{prefix}.{n}" in names else None
                          for n in _FIELDS}
                return PackedLinear(modes[prefix], **fields)  # type: ignore[arg-type]

            layers: list[PackedLayer] = []
            for i, (n1, n2) in enumerate(norms):
                layers.append((n1, get(f"{i}.qkv"), get(f"{i}.o"), n2, get(f"{i}.gate_up"), get(f"{i}.down")))
            return layers, get("head")
    except Exception:  # missing, torn or foreign (SafetensorError is its own class): pack afresh
        return None


def verify_packed(layers: Sequence[PackedLayer], *, tolerance: float = 0.02) -> str | None:
    """Check packed layers against their own plain copies: for the first and last layer,
    each kernel's product on a fixed input against the de-quantized fp32 product. None when
    they agree, else what differs. The int4 kernel layout is ISA-specific, so a packing
    made under another instruction set (a cache on a shared home, a copied image) fails
    here instead of answering garbage."""
    import torch

    picks = [layers[0], layers[-1]] if len(layers) > 1 else list(layers)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for index, layer in zip((0, len(layers) - 1), picks, strict=False):
            for slot, name in _SLOTS.items():
                lin: PackedLinear = layer[slot]  # type: ignore[assignment]
                if lin.mode not in ("int4", "int8"):
                    continue
                width = int(lin.scale.shape[1] * INT4_GROUP) if lin.mode == "int4" else int(lin.weight.shape[1])  # type: ignore[union-attr]
                x = torch.randn(2, width, generator=gen).to(torch.bfloat16)
                want = lin.dense(x.float())
                got = lin.kernel(torch.bfloat16)(x).float()
                err = float((got - want).norm() / want.norm().clamp(min=1e-6))
                if not err <= tolerance:  # NaN fails too
                    return f"layer {index} {name}: kernel product off by {err:.3g} (relative)"
    return None
