"""Fine-tuning end to end with tiny settings: train, resume, save, load by path, chat."""

from __future__ import annotations

import json

import pytest

from agent.errors import ModelError
from agent.toolbox.sft import TrainConfig, train_lm
from tests.helpers.tiny_models import changed_tensors, greedy_replies


def _cfg(data, model, out, **kw):
    base = dict(data=data, model=str(model), output_dir=out, max_steps=3, batch_size=2, grad_accum=1,
                eval_fraction=0.25, save_steps=2, progress=False, max_length=128)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_lora_train_resume_and_chat(tmp_path, tiny_model_dir, conversations_file):
    from agent.models.loader import load_model

    data, out = conversations_file(12), tmp_path / "run"
    report = train_lm(_cfg(data, tiny_model_dir("llama"), out, learning_rate=5e-3))
    assert report["steps"] == 3 and report["lora"] and report["device"] == "cpu"
    assert report["perplexity_before"] > 1 and report["perplexity_after"] > 1
    assert report["tokens_per_s"] > 0 and report["examples"]["train"]["encoded"] == 9
    for name in ("config.json", "model.safetensors", "adapter/adapter_config.json", "loss.png", "train_report.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "adapter/adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_model_dir("llama"))
    resumed = train_lm(_cfg(data, tiny_model_dir("llama"), out, max_steps=4))
    assert resumed["steps"] == 4 and resumed["resumed_from"].endswith(("checkpoint-2", "checkpoint-3"))
    # the folder holds the merged, trained weights: the linear layers LoRA adapted differ from the base's,
    # nothing else does
    changed = changed_tensors(out, tiny_model_dir("llama"))
    assert changed and all(name.endswith("_proj.weight") for name in changed), changed
    streamed, batched = greedy_replies(load_model(str(out), fast=False), "Where is my order?", 5)
    assert streamed and streamed == batched


@pytest.mark.slow
def test_full_fine_tune_of_a_model_without_chat_template(tmp_path, tiny_model_dir, conversations_file):
    from agent.models.loader import load_model

    out = tmp_path / "full"
    report = train_lm(_cfg(conversations_file(8), tiny_model_dir("gpt2"), out, lora=False, max_steps=2))
    assert not report["lora"] and report["steps"] == 2 and "adapter_dir" not in report
    assert changed_tensors(out, tiny_model_dir("gpt2")), "a full fine-tune changes the weights"
    streamed, batched = greedy_replies(load_model(str(out), fast=False), "hi", 4)
    assert streamed and streamed == batched


@pytest.mark.slow
def test_adapter_only_run_loads_through_resolve_adapter_dir(tmp_path, tiny_model_dir, conversations_file):
    from agent.models.adapters import is_adapter_dir
    from agent.models.loader import load_model, resolve_adapter_dir

    out = tmp_path / "adapter-run"
    report = train_lm(_cfg(conversations_file(8), tiny_model_dir("qwen2"), out, max_steps=1, merge=False,
                           lora_targets="q_proj,v_proj"))
    assert "model_dir" not in report and not (out / "config.json").exists()
    adapter = out / "adapter"
    assert is_adapter_dir(adapter) and resolve_adapter_dir(tiny_model_dir("qwen2")) is None
    merged = resolve_adapter_dir(adapter, cache_dir=tmp_path / "cache")
    assert merged.name.startswith("adapter-run-") and resolve_adapter_dir(adapter, cache_dir=tmp_path / "cache") == merged
    streamed, batched = greedy_replies(load_model(str(merged), fast=False), "hi", 3)
    assert streamed and streamed == batched


def test_encoder_decoder_models_are_refused(tmp_path, tiny_model_dir, conversations_file):
    with pytest.raises(ModelError, match="decoder-only"):
        train_lm(_cfg(conversations_file(4), tiny_model_dir("t5"), tmp_path / "t5"))


@pytest.mark.real
def test_lora_on_the_real_default_model_then_llmos_ask(tmp_path, conversations_file, capsys):
    from agent.cli.main import main

    out = tmp_path / "smol"
    report = train_lm(_cfg(conversations_file(6), "smollm2-135m", out, max_steps=2, batch_size=1, max_length=64,
                           eval_fraction=0.34))
    assert report["steps"] == 2 and report["perplexity_after"] < report["perplexity_before"] * 1.5
    config = tmp_path / "agent.yaml"
    config.write_text("memory: {enabled: false}\nunderstanding: {enabled: false}\n"
                      "generation: {max_new_tokens: 12, temperature: 0}\n")
    assert main(["ask", "How do I cancel?", "--model", str(out), "--config", str(config), "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["text"].strip() and reply["tokens"]["completion"] >= 1
