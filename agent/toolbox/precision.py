"""Where training runs and in which precision.

bf16 mixed precision on GPUs that have it (Ampere and newer) and on CPUs that multiply
bf16 natively (AMX / AVX512-BF16); fp16 with loss scaling on older GPUs; fp32 elsewhere,
because emulated bf16 on an AVX2 CPU is slower than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError, ModelError

__all__ = ["TrainPrecision", "resolve_precision"]

_NAMES = {"auto", "bf16", "fp16", "fp32"}


@dataclass(frozen=True)
class TrainPrecision:
    device: str
    """``cpu`` or ``cuda``."""
    name: str
    """``bf16``, ``fp16`` or ``fp32``: the autocast precision."""

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def fp16(self) -> bool:
        return self.name == "fp16"

    @property
    def autocast_dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def weights_dtype(self, lora: bool) -> Any:
        """Frozen base weights can sit in bf16 on a GPU (half the memory); trained weights
        stay fp32 as the optimizer's master copy, with autocast doing the bf16 math."""
        import torch

        if lora and self.device == "cuda" and self.bf16:
            return torch.bfloat16
        return torch.float32


def resolve_precision(device: str = "auto", precision: str = "auto") -> TrainPrecision:
    """Pick the training device and precision; ``device`` is auto, cpu or cuda."""
    import torch

    from agent.models.device import cpu_has_native_bf16

    if precision not in _NAMES:
        raise ConfigError(f"unknown precision {precision!r}: use auto, bf16, fp16 or fp32")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown training device {device!r}: use auto, cpu or cuda "
                          "(pick GPUs with CUDA_VISIBLE_DEVICES or accelerate launch)")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ModelError("device 'cuda' was requested but no CUDA GPU is visible: use --device auto or cpu")
    where = "cuda" if device in ("auto", "cuda") and cuda else "cpu"
    if precision == "fp16" and where == "cpu":
        raise ConfigError("fp16 training needs a GPU; on CPU use bf16 (with AMX/AVX512-BF16) or fp32")
    if precision == "auto":
        if where == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
    return TrainPrecision(device=where, name=precision)
