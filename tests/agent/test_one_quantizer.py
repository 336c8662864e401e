"""One int8 quantizer: the transformers path's Int8Linear holds exactly the weights and
scales the fast decoder packs (the scale rounded to bf16 before the weights are rounded)."""

from __future__ import annotations

import torch
from torch import nn

from agent.models.fastquant import quantize_int8
from agent.models.quantize import Int8Linear
from agent.models.quantize import quantize_int8 as quantize_module


def test_int8_linear_uses_the_fast_decoders_weights_and_scales():
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    with torch.no_grad():
        linear.weight[3].zero_()  # an all-zero row keeps a usable scale
    q, scale = quantize_int8(linear.weight)
    layer = Int8Linear(linear)
    assert torch.equal(layer.qweight, q)
    assert torch.equal(layer.scale.float(), scale) and float(scale[3]) == 1.0
    # every weight is within half a step of its grid point: no row is scaled off by rounding
    error = (q.float() * scale[:, None] - linear.weight.detach()).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-7).all())


def test_a_quantized_module_answers_like_the_float_one():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))
    x = torch.randn(5, 64)
    want = model(x)
    got = quantize_module(model)(x)
    assert all(isinstance(m, Int8Linear) for m in (model[0], model[2]))
    assert float((got - want).abs().max()) < 0.05 * float(want.abs().max())
