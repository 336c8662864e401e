"""Tiny randomly initialised models with a tiny trained BPE tokenizer, one per family: what
the model tests load instead of real weights (the ``tiny_model_dir`` fixture caches them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")

FAMILIES = ("llama", "qwen2", "gpt2", "bloom", "gptj", "t5")


def tiny_tokenizer(folder: Path, chat_template: str | None = None) -> int:
    """Train a 320-token byte-level BPE tokenizer, save it into ``folder``; its vocabulary size."""
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


def build_tiny_model(folder: Path, family: str) -> Path:
    """Write a 2-layer, 32-wide model of ``family`` (one of :data:`FAMILIES`) with its tokenizer."""
    import torch
    import transformers as tf

    vocab = tiny_tokenizer(folder, CHAT_TEMPLATE if family in ("llama", "qwen2") else None)
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
    return folder


def changed_tensors(folder: Path, base: Path) -> list[str]:
    """The names of the tensors two saved models both have and hold different values for
    (what training changed)."""
    import torch
    from safetensors.torch import load_file

    def tensors(path: Path) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for file in sorted(path.glob("*.safetensors")):
            out.update(load_file(file))
        return out

    mine, theirs = tensors(folder), tensors(base)
    return sorted(name for name in mine.keys() & theirs.keys() if not torch.equal(mine[name], theirs[name]))


def greedy_replies(lm: Any, text: str, max_new_tokens: int) -> tuple[str, str]:
    """The greedy reply to one user message through the streaming chat, and through the
    batched transformers path (``generate_batch``): a model that works gives the same twice."""
    messages = [{"role": "user", "content": text}]
    return (lm.chat(messages, max_new_tokens=max_new_tokens, temperature=0),
            lm.generate_batch([messages], max_new_tokens=max_new_tokens, temperature=0)[0])
