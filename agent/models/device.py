"""Choosing where a model runs and in which precision."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agent.errors import ModelError

__all__ = ["Placement", "resolve_placement", "cpu_has_native_bf16", "cpu_flags"]

_REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}
_QUANT = {None, "int8", "8bit", "4bit"}


@dataclass(frozen=True)
class Placement:
    device: str
    """`cpu`, `cuda` or `cuda:N`."""
    dtype: Any
    """A torch dtype."""
    quantization: str | None


def cpu_flags() -> list[str]:
    """The vector-ISA flags of this CPU that choose kernels here (from /proc/cpuinfo; empty
    where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in _REPORTED_FLAGS if flag in have]
    except OSError:
        pass
    return []


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX or AVX512-BF16).

    Without it bf16 matrix products are emulated and prefill gets slower, so fp32 is the
    safer default (these EPYC machines have AVX2 only; Sapphire Rapids has AMX).
    """
    import torch

    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_placement(device: str = "auto", dtype: str = "auto", quantization: str | None = None) -> Placement:
    """Turn user-facing choices into a concrete device, dtype and quantization.

    ``auto`` picks CUDA with bf16 when a GPU is present, else the CPU with bf16 where the
    processor supports it natively and fp32 otherwise.
    """
    import torch

    if quantization not in _QUANT:
        raise ModelError(f"unknown quantization {quantization!r}: use one of int8 (CPU), 8bit or 4bit (GPU)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was requested but no CUDA GPU is visible: use device: auto or cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ModelError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    if quantization in ("8bit", "4bit") and not device.startswith("cuda"):
        raise ModelError(
            f"{quantization} quantization runs through bitsandbytes on a CUDA GPU; this machine has none. "
            "On CPU use quantization: int8 (weight-only int8), or no quantization."
        )
    if dtype == "auto":
        if device.startswith("cuda"):
            name = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            name = "bfloat16" if cpu_has_native_bf16() else "float32"
    else:
        if dtype not in _DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")
        name = _DTYPES[dtype]
    return Placement(device=device, dtype=getattr(torch, name), quantization=quantization)
