"""int8 matrix products for the fast decoder's prefill on x86 CPUs.

A prefill is compute-bound: a 500-token prompt through SmolLM2-135M is 107 GFLOP of
matrix products, ~0.75-0.85 s of fp32 GEMM on two AVX2 cores (no AMX, AVX512-BF16 or VNNI;
bf16 products are emulated and 7x slower). int8 products through FBGEMM run 1.5-2.1x
faster here. Quantizing activations is what costs quality, so it is done with care:

- **per token**: each row is divided by its own absolute maximum before FBGEMM's dynamic
  (per-tensor) quantization and multiplied back after, so a token with huge activations
  (the first one, an attention sink) does not flatten every other row. Per-tensor
  quantization took SmolLM2's prefill perplexity from 18.5 to 58 on SQuAD paragraphs;
- **smoothed** (SmoothQuant, Xiao et al. 2023): input channel j is divided by
  ``s_j = sqrt(max|x_j| / max|W_j|)`` and the weight column multiplied by it, moving
  outlier channels' range into the weights (per output channel int8, +0.5% perplexity
  alone). The channel maxima come from one fp32 prefill of :data:`CALIBRATION_TEXT`;
- **7-bit weights, 8-bit activations**, so that AVX2's saturating ``vpmaddubsw`` cannot
  overflow (:data:`WEIGHT_MAX`);
- **the down projection stays fp32**: its inputs (SiLU-gated) are the hardest to quantize;
  in int8 it alone added 2.5 points of perplexity.

Measured on 8 SQuAD dev passages of 512 tokens (``python -m agent.models.fastbench
--prefill-quality ../shared/data/squad_v1.1/dev-v1.1.json``): prefill perplexity 20.77 ->
21.03 (+1.3%) against fp32 prefill; the cold time to first token of a 500-token prompt
falls ~30% (medians of 15: 1.28 s -> 0.89 s; these shared cores vary +-10% run to run).
Decode is unaffected: it runs the int4/int8 kernels as before. ``prefill="fp32"`` on
:class:`~agent.models.fastpath.FastDecoder` turns this off.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["SmoothedInt8Linear", "Int8Prefill", "prepare_int8_prefill", "int8_prefill_unavailable", "save_int8", "load_int8",
           "PREFILL_MODES", "CALIBRATION_TEXT", "ALPHA", "SLOTS", "PREFILL_FORMAT"]

log = logging.getLogger(__name__)

PREFILL_MODES = ("auto", "int8", "fp32")

MIN_CALIBRATION_TOKENS = 32
"""Calibration ids shorter than this never reach the GEMM path they calibrate."""

ALPHA = 0.5
"""SmoothQuant's migration strength: 0.5 splits each channel's range evenly between the
activation and the weight (0.4 and 0.7 measured worse here)."""

SLOTS = {1: "qkv", 2: "o", 4: "gate_up"}
"""The PackedLayer places that multiply in int8; 5 (down) stays fp32."""

WEIGHT_MAX = 63
"""Weights use 7 bits (-63..63) so that activations can use all 8: AVX2's ``vpmaddubsw``
adds two u8 x s8 products into a saturating int16, and 255 * 63 * 2 = 32130 stays under
32767 (8-bit weights would need 7-bit activations, FBGEMM's ``reduce_range``, which
measured 1.7% perplexity against 1.1% for this split)."""

PREFILL_FORMAT = "int8-sq0.5-w7a8-v1"
"""Bumped when the calibration text or the quantization scheme changes (cache key)."""

CALIBRATION_TEXT = (
    "Customer: Hi, I ordered a pair of running shoes two weeks ago (order #48213) and they still "
    "haven't arrived. The tracking page says 'label created' and nothing since. Can you help?\n"
    "Agent: I'm sorry about the delay. I checked your order: the parcel left our warehouse on "
    "Tuesday, but the carrier did not scan it. I have opened a trace, and if it is not found within "
    "48 hours we will send a replacement at no cost.\n\n"
    "Photosynthesis is the process by which green plants, algae and some bacteria turn light into "
    "chemical energy. Chlorophyll absorbs mostly blue and red light; the energy splits water, "
    "releasing oxygen, and drives the synthesis of glucose from carbon dioxide. In 2019, researchers "
    "estimated that land plants fix about 120 billion tonnes of carbon each year.\n\n"
    "def moving_average(values, window=3):\n"
    "    \"\"\"Return the averages of each run of `window` consecutive values.\"\"\"\n"
    "    if window <= 0:\n"
    "        raise ValueError('window must be positive')\n"
    "    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]\n\n"
    "Q: What is the capital of Australia? A: Canberra, not Sydney, although Sydney is larger.\n"
    "Quelle est la couleur du ciel ? Le ciel est bleu à cause de la diffusion de Rayleigh.\n"
    "Steps: 1) preheat the oven to 180 °C; 2) mix 200 g flour, 100 g sugar and 2 eggs; "
    "3) bake for 25 minutes. Total: ~45 min, serves 4-6."
)
"""Mixed text for the channel maxima: dialogue, prose, numbers, code, another language.
Not the perplexity texts used to check the result."""


def int8_prefill_unavailable() -> str | None:
    """Why int8 prefill cannot run here (None: it can)."""
    import torch

    engines = set(torch.backends.quantized.supported_engines)
    if not engines & {"x86", "fbgemm"}:
        return f"no x86/FBGEMM quantized engine (have {', '.join(sorted(engines)) or 'none'})"
    if not hasattr(torch.ops.quantized, "linear_dynamic") or not hasattr(torch.ops.quantized, "linear_prepack"):
        return "this torch build has no quantized linear_dynamic op"
    return None


class SmoothedInt8Linear:
    """``y = x @ W.T + b`` for many rows with per-token 8-bit activations, a smoothed 7-bit
    weight (per output channel) and FBGEMM. Build with :meth:`from_dense` or from stored
    tensors; :meth:`pack` prepares FBGEMM's layout (done once)."""

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, inv_smooth: torch.Tensor,
                 bias: torch.Tensor | None = None) -> None:
        self.weight: torch.Tensor | None = weight  # int8 (out, in) in -63..63: round(W * s / scale); None once packed
        self.out_features = int(weight.shape[0])
        self.scale = scale  # fp32 (out,)
        self.inv_smooth = inv_smooth  # fp32 (in,): 1 / s
        self.bias = bias
        self._packed: Any = None

    @classmethod
    def from_dense(cls, weight: torch.Tensor, bias: torch.Tensor | None, act_absmax: torch.Tensor,
                   alpha: float = ALPHA) -> SmoothedInt8Linear:
        """Quantize fp32 ``weight`` (out, in) given each input channel's calibrated max |x|."""
        import torch

        w = weight.to(torch.float32)
        s = (act_absmax.clamp(min=1e-5) ** alpha / w.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)
        ws = w * s[None, :]
        scale = ws.abs().amax(1).clamp(min=1e-8) / WEIGHT_MAX
        q = torch.round(ws / scale[:, None]).clamp_(-WEIGHT_MAX, WEIGHT_MAX).to(torch.int8)
        return cls(q, scale, (1.0 / s).contiguous(), None if bias is None else bias.to(torch.float32))

    def pack(self) -> SmoothedInt8Linear:
        import torch

        if self._packed is None:
            assert self.weight is not None
            zeros = torch.zeros(self.out_features, dtype=torch.long)
            with warnings.catch_warnings():  # quantized-tensor constructors warn of their future removal
                warnings.simplefilter("ignore", UserWarning)
                qweight = torch._make_per_channel_quantized_tensor(self.weight, self.scale.double(), zeros, 0)
                # no bias in the kernel: it would be scaled by each row's factor below
                self._packed = torch.ops.quantized.linear_prepack(qweight, None)
            self.weight = None  # FBGEMM keeps its own copies (~2.7x the int8 bytes in all)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if self._packed is None:
            self.pack()
        xs = x * self.inv_smooth
        # max |x| of each row; two reductions beat abs().amax() and are 9x faster than
        # vector_norm(ord=inf) here
        r = torch.maximum(xs.amax(1, keepdim=True), xs.amin(1, keepdim=True).neg_()).clamp_(min=1e-8)
        y = torch.ops.quantized.linear_dynamic(xs.div_(r), self._packed, False).mul_(r)
        return y if self.bias is None else y.add_(self.bias)

    def tensors(self) -> dict[str, torch.Tensor]:
        """What :func:`save_int8` stores (before :meth:`pack`, which drops the int8 weight)."""
        if self.weight is None:
            raise ValueError("SmoothedInt8Linear was packed: its int8 weight now lives in FBGEMM's layout only")
        out = {"weight": self.weight, "scale": self.scale, "inv_smooth": self.inv_smooth}
        if self.bias is not None:
            out["bias"] = self.bias
        return out


def save_int8(path: Path, key: dict[str, str], layers: list[dict[int, SmoothedInt8Linear]]) -> None:
    """Write the int8 prefill weights whole or not at all."""
    from agent.models.fastquant import save_atomically

    tensors = {f"{i}.{slot}.{name}": t.contiguous() for i, layer in enumerate(layers)
               for slot, lin in layer.items() for name, t in lin.tensors().items()}
    save_atomically(path, tensors, key)


def load_int8(path: Path, key: dict[str, str]) -> list[dict[int, SmoothedInt8Linear]] | None:
    """The int8 prefill weights :func:`save_int8` wrote for ``key`` (with or without a
    calibration hash: a cache written from the same model's calibration serves a caller
    that has no calibration ids), else None."""
    from safetensors import safe_open

    from agent.models.fastquant import aligned

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if any(meta.get(k) != v for k, v in key.items()):
                return None
            names = set(f.keys())
            layers = []
            for i in range(int(key["layers"])):
                layer = {}
                for slot in SLOTS:
                    get = {n: aligned(f.get_tensor(f"{i}.{slot}.{n}"))
                           for n in ("weight", "scale", "inv_smooth", "bias") if f"{i}.{slot}.{n}" in names}
                    layer[slot] = SmoothedInt8Linear(get["weight"], get["scale"], get["inv_smooth"], get.get("bias"))
                layers.append(layer)
            return layers
    except Exception:  # missing, torn or foreign: calibrate afresh
        return None


class Int8Prefill:
    """A decoder's int8 products, packed for FBGEMM in a background thread.

    FBGEMM's packing takes ~0.5 s for SmolLM2 and its result cannot be stored, so it runs
    beside the rest of the start-up (the op releases the GIL) and :meth:`layers` waits for
    it. The thread is not a daemon: a process exiting mid-pack aborted in C++ (SIGABRT);
    the interpreter now waits for it at exit instead.
    """

    def __init__(self, layers: list[dict[int, SmoothedInt8Linear]]) -> None:
        self._layers = layers
        self._ready = threading.Event()
        self.failure: str | None = None
        threading.Thread(target=self._pack, name="llmos-int8-pack").start()

    def _pack(self) -> None:
        try:
            for layer in self._layers:
                for lin in layer.values():
                    lin.pack()
        except Exception as exc:  # a torch without working FBGEMM ops: fp32 it is
            self.failure = str(exc) or type(exc).__name__
            log.warning("int8 prefill unavailable (%s); prompts multiply in fp32", self.failure)
        finally:
            self._ready.set()

    @property
    def usable(self) -> bool:
        """False once packing failed (True while it is still running)."""
        return self.failure is None

    def layers(self) -> list[dict[int, SmoothedInt8Linear]] | None:
        """Per layer ``{slot: SmoothedInt8Linear}`` once packed (waits), or None if packing failed."""
        self._ready.wait()
        return None if self.failure is not None else self._layers


def prepare_int8_prefill(decoder: Any, prefill: str, hf_model: Any, calibration_ids: Any) -> Int8Prefill | None:
    """The int8 products for ``decoder`` (a :class:`~agent.models.fastpath.FastDecoder`), or
    None for fp32 prefill: ``prefill`` resolved (``auto``: int8 for int4/int8 weights where
    FBGEMM runs and calibration is possible), the weights read from the cache or calibrated
    on ``calibration_ids`` and cached. An explicit ``"int8"`` that cannot be had is an error."""
    import torch

    from agent.errors import ModelError
    from agent.models.fastquant import kernel_isa, model_fingerprint

    if prefill == "fp32" or (prefill == "auto" and decoder.weights not in ("int4", "int8")):
        return None
    ids = [int(t) for t in calibration_ids or ()]
    if len(ids) < MIN_CALIBRATION_TOKENS:
        ids = []
    path = decoder.cache_file(hf_model, f"{decoder.weights}-prefill8")
    reason = int8_prefill_unavailable()
    if reason is None and not ids and path is None:
        reason = "it needs calibration_ids (the tokenized prefill8.CALIBRATION_TEXT) and there is no cache"
    if reason is not None:
        if prefill == "int8":
            raise ModelError(f"int8 prefill is unavailable: {reason}; use prefill='fp32'")
        return None
    layer_count = len(decoder.packed_layers)
    key = {"format": PREFILL_FORMAT, "torch": torch.__version__, "weights": decoder.weights,
           "model": model_fingerprint(hf_model) or "", "layers": str(layer_count), "isa": kernel_isa()}
    if ids:
        key["calibration"] = hashlib.sha256(repr(ids).encode()).hexdigest()[:16]
    layers = load_int8(path, key) if path is not None else None
    if layers is None:
        if not ids:
            if prefill == "int8":
                raise ModelError("int8 prefill needs calibration_ids (the tokenized "
                                 "agent.models.prefill8.CALIBRATION_TEXT) the first time")
            return None
        started = time.perf_counter()
        maxima = decoder.activation_maxima(ids)
        with torch.inference_mode():
            layers = [{slot: SmoothedInt8Linear.from_dense(layer[slot].dense_weight(), layer[slot].bias, maxima[(i, slot)])
                       for slot in SLOTS} for i, layer in enumerate(decoder.packed_layers)]
        log.info("calibrated int8 prefill on %d tokens in %.2fs", len(ids), time.perf_counter() - started)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_int8(path, key, layers)
            except OSError as exc:
                log.debug("cannot cache int8 prefill weights at %s: %s", path, exc)
    return Int8Prefill(layers)
