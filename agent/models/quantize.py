"""Weight-only int8 quantization of linear layers, for CPU inference and any architecture.

Each output channel keeps its own scale (symmetric, per-channel), chosen by
:func:`agent.models.fastquant.quantize_int8` (the scale is rounded to bf16 before the
weights are rounded, so the kernel's bf16 scales carry no bias). The product runs
through ``torch._weight_int8pack_mm`` with bf16 activations: on these CPUs it multiplies a
one-token batch by int8 weights about 3x faster than fp32 weights, because decode is
bound by reading the weights from memory and int8 weights are a quarter of the bytes.
The product goes through :func:`agent.models.fastquant.int8_kernel`, which meets the
kernel's alignment and width requirements on every x86 variant.
"""

from __future__ import annotations

import torch
from torch import nn

from agent.models.fastquant import aligned, int8_kernel
from agent.models.fastquant import quantize_int8 as quantize_weight

__all__ = ["Int8Linear", "quantize_int8"]


class Int8Linear(nn.Module):
    """A drop-in for ``nn.Linear`` holding int8 weights."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        q, scale = quantize_weight(linear.weight)  # the fast decoder's quantizer: one rounding rule
        scale = scale.to(torch.bfloat16)  # exact: the scales are bf16 values already
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self.register_buffer("bias", bias)
        self._mm = int8_kernel(q, scale)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        out = super()._apply(fn, recurse)
        qweight, scale = self.qweight, self.scale
        assert isinstance(qweight, torch.Tensor) and isinstance(scale, torch.Tensor)
        self._mm = int8_kernel(qweight, scale)  # the buffers moved: bind the new ones
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        # a fresh, aligned copy of the rows unless they already are one (a view of a bf16
        # activation can start anywhere)
        flat = aligned(x.reshape(-1, shape[-1]).to(torch.bfloat16))
        bias = self.bias
        out = self._mm(flat)
        if isinstance(bias, torch.Tensor):
            out = out + bias
        return out.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_int8(model: nn.Module, *, skip: tuple[str, ...] = ()) -> nn.Module:
    """Replace every ``nn.Linear`` in ``model`` (in place) by an :class:`Int8Linear`.

    Layers whose qualified name contains one of ``skip`` stay as they are. Tied weights
    (an lm_head sharing the embedding) are quantized as a copy; the embedding stays.
    """
    targets = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.Linear)
               and not any(s in name for s in skip)]
    for name, mod in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(mod))
    return model
