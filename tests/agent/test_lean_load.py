"""Loading a Llama-family folder without transformers (agent.models.checkpoint and
agent.models.tokenizer): the same tokens, logits, prompts and errors as the transformers
path, and transformers itself only loaded when a call needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from agent import load_model
from agent.errors import ModelError
from agent.models.checkpoint import Checkpoint, lean_reason
from agent.models.tokenizer import LeanTokenizer, lean_tokenizer_reason

MESSAGES = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "The capital?"},
     {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "ünïcödé 🎉 <s> {{ x }}"}],
]
TEXTS = ["Once upon a time", "  two  spaces\tand a tab\nnew line", "ünïcödé 🎉 中文", "<s>hello</s>", "",
         "don't , it's .", "x" * 300]


def _greedy(lm, prompt, n=8):
    return lm.generate_text(prompt, max_new_tokens=n, temperature=0)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_tiny_models_load_lean_and_match_transformers(tiny_model_dir, family):
    folder = tiny_model_dir(family)
    lean = load_model(str(folder), device="cpu", fast="auto")
    full = load_model(str(folder), device="cpu", fast="auto", lean=False)
    assert isinstance(lean._model, Checkpoint) and not lean.transformers_loaded
    assert type(full._model).__name__ != "Checkpoint" and full.transformers_loaded
    assert lean.fast.weights == full.fast.weights
    for messages in MESSAGES:
        assert lean.format_chat(messages) == full.format_chat(messages)
        text = lean.format_chat(messages)
        assert lean.encode_prompt(text) == full.encode_prompt(text)
    ids = lean.encode_prompt("Once upon a time there was")
    torch.testing.assert_close(lean.fast.logits(ids), full.fast.logits(ids), atol=0, rtol=0)
    assert _greedy(lean, "Once upon a time") == _greedy(full, "Once upon a time")
    assert (lean.context_window, lean.eos_token_ids, lean.is_seq2seq) == (
        full.context_window, full.eos_token_ids, full.is_seq2seq)
    assert not lean.transformers_loaded  # none of that needed transformers


def test_the_transformers_model_loads_on_first_use(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("llama")), device="cpu")
    assert not lm.transformers_loaded
    before = _greedy(lm, "Once upon a time")
    assert before and not lm.transformers_loaded  # the lean decoder streams without transformers
    batch = lm.generate_batch(["The capital", "Hello, how are"], max_new_tokens=3, temperature=0)
    assert len(batch) == 2 and lm.transformers_loaded
    assert type(lm.model).__name__ == "LlamaForCausalLM"
    assert lm.hf_tokenizer is not lm.tokenizer and lm.hf_tokenizer.pad_token_id is not None
    # the decoder keeps serving streams after the switch, the same tokens as before it
    assert _greedy(lm, "Once upon a time") == before


def test_sharded_checkpoints_and_tied_heads_load(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = tiny_model_dir("llama")
    model = AutoModelForCausalLM.from_pretrained(source)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    AutoTokenizer.from_pretrained(source).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    lean = load_model(str(tmp_path), device="cpu")
    assert isinstance(lean._model, Checkpoint)
    assert _greedy(lean, "Hello") == _greedy(load_model(str(source), device="cpu", lean=False), "Hello")


@pytest.mark.parametrize(("edit", "reason"), [
    ({"architectures": ["GPT2LMHeadModel"]}, "architecture"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, "rope type 'llama3'"),
    ({"quantization_config": {"quant_method": "bitsandbytes"}}, "quantized"),
])
def test_what_lean_loading_does_not_read_goes_through_transformers(tiny_model_dir, tmp_path, edit, reason):
    folder = _copy(tiny_model_dir("llama"), tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    assert reason in (lean_reason(folder) or "")
    with pytest.raises(ModelError, match="cannot be read without transformers"):
        Checkpoint(folder, torch.float32)


def test_a_tokenizer_class_that_rewrites_itself_goes_through_transformers(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir("llama"), tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "LlamaTokenizer"}))
    assert "tokenizer class 'LlamaTokenizer'" in (lean_tokenizer_reason(folder) or "")
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "add_bos_token": True}))
    assert "add_bos_token" in (lean_tokenizer_reason(folder) or "")
    lm = load_model(str(folder), device="cpu")  # still loads, the transformers way
    assert lm.transformers_loaded and lm.fast is not None


def test_a_torn_weights_file_is_a_clear_error(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir("llama"), tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot read weights"):
        load_model(str(folder), device="cpu")


def test_lean_tokenizer_matches_transformers_on_the_tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    _assert_same_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir("llama")), LeanTokenizer(tiny_model_dir("llama")))


def test_lean_tokenizer_errors_say_what_to_use(tiny_model_dir, tmp_path):
    tok = LeanTokenizer(tiny_model_dir("gpt2"))  # no chat template in that folder
    with pytest.raises(ModelError, match="no chat template"):
        tok.apply_chat_template(MESSAGES[0], tokenize=False)
    with pytest.raises(ModelError, match="hf_tokenizer"):
        tok(["a", "b"], padding=True, return_tensors="pt")
    folder = _copy(tiny_model_dir("llama"), tmp_path)
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="does not parse"):
        LeanTokenizer(folder).apply_chat_template(MESSAGES[0], tokenize=False)


def test_chat_templates_stay_sandboxed(tiny_model_dir, tmp_path):
    from jinja2.exceptions import SecurityError

    folder = _copy(tiny_model_dir("llama"), tmp_path)
    (folder / "chat_template.jinja").write_text("{{ messages.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SecurityError):
        LeanTokenizer(folder).apply_chat_template(MESSAGES[0], tokenize=False)


# -- the real default model --------------------------------------------------------------------


@pytest.mark.real
def test_smollm2_tokenizer_matches_transformers():
    from transformers import AutoTokenizer

    from agent.models.embedded import ensure_converted

    folder = ensure_converted()
    _assert_same_tokenizer(AutoTokenizer.from_pretrained(folder), LeanTokenizer(folder))


@pytest.mark.real
def test_agent_start_up_does_not_import_transformers(tmp_path):
    """The start-up path `Agent()` -> the embedded model stays free of transformers' modeling
    imports (4-5 s here); its time is a benchmark figure (`llmos bench`, agent_start_fresh_s)."""
    from agent.models.embedded import ensure_converted

    ensure_converted()  # a first conversion needs transformers: done here, not in the child
    code = textwrap.dedent("""
        import sys
        from agent import Agent
        agent = Agent()
        reply = agent.chat("Say hello.", session_id=None)
        assert reply.text.strip(), reply
        assert type(agent.backend.model._model).__name__ == "Checkpoint"
        print(sorted(m for m in sys.modules if m.split(".")[0] == "transformers"))
    """)
    env = {**os.environ, "LLMOS_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _assert_same_tokenizer(hf, lean: LeanTokenizer) -> None:
    for text in TEXTS:
        for special in (True, False):
            assert lean(text, add_special_tokens=special)["input_ids"] == hf(text, add_special_tokens=special)["input_ids"]
        ids = hf(text)["input_ids"]
        for skip in (True, False):
            assert lean.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)
    for messages in MESSAGES:
        for generation in (True, False):
            assert lean.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation) == \
                hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(lean, name) == getattr(hf, name), name
    assert len(lean) == len(hf)


def _copy(source: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    return folder


@pytest.mark.real
def test_the_bench_start_up_probe_reports_time_memory_and_no_transformers():
    from agent.models.embedded import ensure_converted
    from agent.toolbox.bench import fresh_start

    ensure_converted()
    figures = fresh_start("smollm2-135m", repeats=1, turn="Say hello in five words.")
    assert figures["agent_start_fresh_s"] > 0 and figures["agent_start_imports_transformers"] is False
    assert 100 < figures["agent_turn_peak_rss_mb"] < 8000 and figures["agent_fresh_first_token_ms"] > 0
