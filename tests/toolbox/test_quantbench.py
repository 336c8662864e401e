"""Quantized loads end to end, and the side-by-side quantization benchmark."""

from __future__ import annotations

import pytest

from agent.toolbox.quantbench import bench_quantization, format_quant_table, quant_options, run_one
from tests.helpers.tiny_models import greedy_replies


@pytest.mark.parametrize("quantization", ["int8", "int8-dynamic"])
def test_quantized_cpu_model_chats(tiny_model_dir, quantization):
    from agent.models.loader import load_model
    from agent.toolbox.quantbench import quantize_dynamic_int8

    if quantization == "int8":
        lm = load_model(str(tiny_model_dir("llama")), quantization="int8", fast=False)
        assert any(type(m).__name__ == "Int8Linear" for m in lm.model.modules())
    else:
        lm = quantize_dynamic_int8(load_model(str(tiny_model_dir("llama")), dtype="float32", fast=False))
    streamed, batched = greedy_replies(lm, "hello", 4)  # both paths through the quantized layers
    assert streamed and streamed == batched


def test_options_listed_for_this_machine():
    names = [o["option"] for o in quant_options()]
    assert names[:4] == ["fp32", "bf16", "int8", "int8-dynamic"]


def test_one_option_in_process_and_through_a_subprocess(tiny_model_dir, conversations_file):
    data = str(conversations_file(4))
    option = next(o for o in quant_options() if o["option"] == "int8-dynamic")
    row = run_one(str(tiny_model_dir("llama")), option, data, limit=4, new_tokens=4, repeats=1)
    assert row["perplexity"] > 1 and row["weights_mb"] > 0 and row["decode_tokens_per_s"] > 0
    result = bench_quantization(str(tiny_model_dir("llama")), data=data, limit=4, new_tokens=4, repeats=1,
                                options=["int8"])
    assert [r["option"] for r in result["rows"]] == ["int8"] and "error" not in result["rows"][0], result
    assert "int8" in format_quant_table(result)
