"""Shared fixtures: isolated data dirs, fake agents, tiny tokenizers, the real default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the user's real data directory."""
    monkeypatch.setenv("LLMOS_DATA_DIR", str(tmp_path_factory.mktemp("llmos-data")))


@pytest.fixture
def fake_config(tmp_path: Path):
    from agent.config import load_config

    def make(**overrides):
        base = {"model": {"backend": "fake"}, "memory": {"enabled": False},
                "understanding": {"enabled": False}, "data_dir": str(tmp_path / "data")}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_config(environ={}, overrides=base)

    return make


@pytest.fixture
def fake_agent(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    agents = []

    def make(replies=(), **overrides):
        backend = FakeBackend(replies)
        agent = Agent(fake_config(**overrides), backend=backend, skills={})
        agents.append(agent)
        return agent, backend

    yield make
    for agent in agents:
        agent.close()


def _tiny_tokenizer(folder: Path, chat_template: str | None = None) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = ["Once upon a time there was a tiny model.", "The capital of France is Paris.",
              "Hello, how are you today?"] * 20
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(folder)
    return len(fast)


CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """Build (once per family) a tiny randomly initialised model with a tiny tokenizer."""
    import torch

    cache: dict[str, Path] = {}

    def make(family: str) -> Path:
        if family in cache:
            return cache[family]
        import transformers as tf

        folder = tmp_path_factory.mktemp(f"tiny-{family}")
        vocab = _tiny_tokenizer(folder, CHAT_TEMPLATE if family in ("llama", "qwen2") else None)
        common = {"vocab_size": vocab, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
        configs = {
            "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)),
            "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)),
            "gpt2": (tf.GPT2Config, tf.GPT2LMHeadModel, dict(n_embd=32, n_layer=2, n_head=4, n_positions=256)),
            "bloom": (tf.BloomConfig, tf.BloomForCausalLM, dict(hidden_size=32, n_layer=2, n_head=4)),
            "gptj": (tf.GPTJConfig, tf.GPTJForCausalLM, dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=256)),
            "t5": (tf.T5Config, tf.T5ForConditionalGeneration, dict(d_model=32, d_ff=64, d_kv=8, num_layers=2,
                   num_heads=4, decoder_start_token_id=0)),
        }
        config_cls, model_cls, kwargs = configs[family]
        torch.manual_seed(0)
        model = model_cls(config_cls(**common, **kwargs))
        model.save_pretrained(folder)
        cache[family] = folder
        return folder

    return make


@pytest.fixture(scope="session")
def real_model():
    """The embedded default model, loaded once for the whole test session."""
    from agent import load_model

    return load_model("smollm2-135m")
