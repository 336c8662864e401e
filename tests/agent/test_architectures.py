"""Every supported architecture family loads and generates through the same code path,
proven with tiny randomly initialised models saved to a temp dir."""

import pytest

from agent import load_model
from agent.errors import ModelError

FAMILIES = ["llama", "qwen2", "gpt2", "bloom", "gptj", "t5"]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_loads_and_generates(tiny_model_dir, family):
    model = load_model(str(tiny_model_dir(family)), device="cpu")
    assert model.is_seq2seq == (family == "t5")
    text = model.generate_text("Once upon a time", max_new_tokens=6, temperature=0)
    assert isinstance(text, str)
    stream = model.stream([{"role": "user", "content": "Hello"}], max_new_tokens=5, temperature=0.8, seed=1)
    pieces = list(stream)
    assert stream.completion_tokens <= 5 and "".join(pieces) == "".join(pieces)
    assert stream.finish_reason in ("stop", "length")
    batch = model.generate_batch(["The capital", "Hello, how are"], max_new_tokens=4, temperature=0)
    assert len(batch) == 2


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_sampling_with_a_seed_is_reproducible(tiny_model_dir, family):
    model = load_model(str(tiny_model_dir(family)), device="cpu")
    a = model.generate_text("Once upon", max_new_tokens=8, temperature=1.0, seed=42)
    b = model.generate_text("Once upon", max_new_tokens=8, temperature=1.0, seed=42)
    assert a == b


def test_int8_quantization_on_cpu_keeps_generating(tiny_model_dir):
    model = load_model(str(tiny_model_dir("gpt2")), device="cpu", quantization="int8")
    from agent.models.quantize import Int8Linear

    assert any(isinstance(m, Int8Linear) for m in model.model.modules()) or model.fast is not None
    assert isinstance(model.generate_text("Hello", max_new_tokens=4, temperature=0), str)


def test_gpu_quantization_on_cpu_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ModelError, match="CUDA GPU.*int8"):
        load_model(str(tiny_model_dir("llama")), device="cpu", quantization="4bit")


def test_unknown_and_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        load_model("definitely-not-a-model")
    with pytest.raises(ModelError, match="not on this machine: fetch it once with `llmos pull"):
        load_model("someorg/not-cached-anywhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "x.gguf"))


def test_too_long_prompt_is_an_input_error(tiny_model_dir):
    from agent.errors import InputError

    model = load_model(str(tiny_model_dir("gpt2")), device="cpu")
    with pytest.raises(InputError, match="reads at most 256"):
        model.generate_text("hello " * 400, max_new_tokens=2)
