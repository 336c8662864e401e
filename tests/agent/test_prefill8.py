"""int8 prefill (agent.models.prefill8 and FastDecoder(prefill=...)): per-token smoothed int8
products, calibration, its cache, the fallbacks, and the real model's quality."""

from __future__ import annotations

import logging

import pytest
import torch

from agent import load_model
from agent.errors import ModelError
from agent.models.fastpath import FastDecoder
from agent.models.prefill8 import CALIBRATION_TEXT, SmoothedInt8Linear, int8_prefill_unavailable

pytestmark = pytest.mark.skipif(int8_prefill_unavailable() is not None, reason="no FBGEMM engine here")


def _relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


def test_per_token_smoothed_int8_keeps_an_outlier_token_and_channel_from_flattening_the_rest():
    torch.manual_seed(0)
    x = torch.randn(200, 256)
    x[:, 7] *= 40  # an outlier channel, in every token
    x[0] *= 60  # an outlier token (an attention sink)
    w = torch.randn(96, 256) / 16
    bias = torch.randn(96)
    ref = x @ w.T + bias
    lin = SmoothedInt8Linear.from_dense(w, bias, x.abs().amax(0))
    assert _relative_error(lin(x), ref) < 0.04  # 7-bit weights, 8-bit activations
    assert _relative_error(lin(x)[1:], ref[1:]) < 0.04  # the ordinary rows too
    # what per-tensor activations do to the same rows (the scheme this replaces)
    scale = w.abs().amax(1) / 127
    plain = SmoothedInt8Linear(torch.round(w / scale[:, None]).to(torch.int8), scale, torch.ones(256)).pack()
    naive = torch.ops.quantized.linear_dynamic(x, plain._packed, True) + bias
    assert _relative_error(naive[1:], ref[1:]) > 5 * _relative_error(lin(x)[1:], ref[1:])


def test_a_row_of_zeros_stays_zero_plus_bias():
    lin = SmoothedInt8Linear.from_dense(torch.randn(32, 64), torch.ones(32), torch.ones(64))
    y = lin(torch.zeros(3, 64))
    torch.testing.assert_close(y, torch.ones(3, 32))


@pytest.fixture
def tiny_llama(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOS_CACHE_DIR", str(tmp_path / "cache"))
    return tiny_model_dir("llama")


def _cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache" / "fast").glob("*prefill8*"))


def test_int8_prefill_calibrates_once_then_loads_from_the_cache(tiny_llama, tmp_path, monkeypatch):
    lm = load_model(str(tiny_llama), device="cpu", dtype="float32", quantization="int8", prefill="int8")
    assert lm.fast.weights == "int8" and lm.fast.prefill == "int8"
    assert len(_cache_files(tmp_path)) == 1
    fp32 = load_model(str(tiny_llama), device="cpu", dtype="float32", quantization="int8", prefill="fp32")
    ids = lm.encode_prompt("Once upon a time there was a tiny model. " * 6)
    assert len(ids) >= 32  # the GEMM path
    a, b = lm.fast.logits(ids), fp32.fast.logits(ids)
    assert _relative_error(a, b) < 0.05
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.9

    def no_calibration(*_args, **_kwargs):
        raise AssertionError("calibrated again instead of reading the cache")

    monkeypatch.setattr(FastDecoder, "activation_maxima", no_calibration)
    again = load_model(str(tiny_llama), device="cpu", dtype="float32", quantization="int8", prefill="int8")
    torch.testing.assert_close(again.fast.logits(ids), a)


def test_a_torn_calibration_cache_is_calibrated_afresh(tiny_llama, tmp_path):
    load_model(str(tiny_llama), device="cpu", quantization="int8", prefill="int8")
    (path,) = (tmp_path / "cache" / "fast").glob("*prefill8*")
    path.write_bytes(path.read_bytes()[:500])
    lm = load_model(str(tiny_llama), device="cpu", quantization="int8", prefill="int8")
    assert lm.fast.prefill == "int8" and path.stat().st_size > 500


def test_auto_is_int8_only_for_quantized_weights(tiny_llama):
    assert load_model(str(tiny_llama), device="cpu", dtype="float32").fast.prefill == "fp32"  # fp32 weights: exact
    assert load_model(str(tiny_llama), device="cpu", quantization="int8").fast.prefill == "int8"


def test_int8_without_calibration_or_cache_is_a_clear_error(tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    with pytest.raises(ModelError, match="calibration_ids"):
        FastDecoder(model, weights="int8", prefill="int8", cache_dir=False)
    with pytest.raises(ModelError, match="calibration_ids"):
        FastDecoder(model, weights="int8", prefill="int8", calibration_ids=[1, 2, 3])  # too short to calibrate
    assert FastDecoder(model, weights="int8", prefill="auto").prefill == "fp32"  # nothing to calibrate with
    with pytest.raises(ModelError, match="unknown prefill"):
        FastDecoder(model, weights="int8", prefill="int4")


def test_a_failed_weight_packing_falls_back_to_fp32(tiny_llama, monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("no FBGEMM today")

    monkeypatch.setattr(SmoothedInt8Linear, "pack", broken)
    with caplog.at_level(logging.WARNING, logger="agent.models.prefill8"):
        lm = load_model(str(tiny_llama), device="cpu", quantization="int8", prefill="int8")
        text = lm.generate_text("Once upon a time there was a tiny model. " * 6, max_new_tokens=3, temperature=0)
    assert isinstance(text, str) and lm.fast.prefill == "fp32"
    assert "int8 prefill unavailable" in caplog.text


def test_calibration_text_is_not_the_perplexity_text():
    from agent.models.fastbench import PERPLEXITY_TEXT

    assert PERPLEXITY_TEXT[:60] not in CALIBRATION_TEXT


# -- the real default model --------------------------------------------------------------------


@pytest.mark.real
def test_real_model_int8_prefill_keeps_its_perplexity_and_answers():
    from agent.models.fastbench import PERPLEXITY_TEXT, perplexity

    int8 = load_model("smollm2-135m", prefill="int8")
    fp32 = load_model("smollm2-135m", prefill="fp32")
    assert int8.fast.prefill == "int8" and int8.fast.weights in ("int4", "int8")  # int8 where weights load as bf16
    ids = int8.tokenizer(PERPLEXITY_TEXT)["input_ids"]
    ratio = perplexity(int8.fast.logits(ids), ids) / perplexity(fp32.fast.logits(ids), ids)
    assert 0.97 < ratio < 1.03
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert len(int8.encode_prompt(int8.format_chat(messages))) >= 32  # goes through the int8 GEMMs
    assert "Paris" in int8.chat(messages, temperature=0, max_new_tokens=24)


@pytest.mark.real
def test_a_process_that_exits_while_the_weights_pack_exits_cleanly():
    """The FBGEMM packing thread runs ~0.5 s after load; a daemon thread there made a process
    that exited at once abort in C++ (SIGABRT, exit -6)."""
    import subprocess
    import sys

    code = "from agent import load_model; lm = load_model('smollm2-135m'); assert lm.fast.prefill == 'int8'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
