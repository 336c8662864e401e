"""``llmos eval lm``: perplexity on assistant tokens and reference scores of generated replies.

Perplexity covers every assistant token of every conversation. For the reference
scores, each conversation's last assistant message is the reference and the model
answers the messages before it (greedy decoding, so the figures are reproducible).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.models.presets import DEFAULT_MODEL
from agent.toolbox.conversations import prompt_and_reference, read_conversations
from agent.toolbox.metrics import format_table, reference_scores
from agent.toolbox.perplexity import perplexity
from agent.toolbox.sft_data import ChatEncoder

__all__ = ["evaluate_lm", "format_eval"]


def _fit(lm: Any, prompt: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """Drop the oldest turns (keeping a system message) until the prompt fits ``budget`` tokens."""
    prompt = list(prompt)
    while len(prompt) > 1 and lm.count_tokens(lm.format_chat(prompt)) > budget:
        drop = 1 if prompt[0]["role"] == "system" and len(prompt) > 2 else 0
        prompt.pop(drop)
    return prompt


def _generate(lm: Any, pairs: list[tuple[list[dict[str, str]], str]], batch_size: int,
              max_new_tokens: int) -> list[str]:
    budget = max(lm.context_window - max_new_tokens, 16) if not lm.is_seq2seq else 10**9
    prompts = [_fit(lm, prompt, budget) for prompt, _ in pairs]
    # Similar lengths in one batch pad less; answers go back in the input order.
    order = sorted(range(len(prompts)), key=lambda i: len(lm.format_chat(prompts[i])))
    answers: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        replies = lm.generate_batch([prompts[i] for i in chunk], temperature=0.0, max_new_tokens=max_new_tokens)
        answers.update({i: r.strip() for i, r in zip(chunk, replies, strict=True)})
    return [answers[i] for i in range(len(prompts))]


def evaluate_lm(data: str | Path, model: str = DEFAULT_MODEL, *, lm: Any = None, limit: int | None = None,
                max_length: int = 1024, batch_size: int = 8, generate: bool = True, max_new_tokens: int = 64,
                device: str = "auto", dtype: str = "auto", quantization: str | None = None) -> dict[str, Any]:
    """Evaluate a model on conversations; ``lm`` (a loaded model) skips loading ``model``."""
    conversations = read_conversations(data, limit)
    if lm is None:
        from agent.models.loader import load_model

        # fast=False: perplexity needs the transformers forward, quantized the same way.
        lm = load_model(model, device=device, dtype=dtype, quantization=quantization, fast=False)
    result: dict[str, Any] = {"model": getattr(lm, "name", model), "data": str(data),
                              "conversations": len(conversations), "quantization": quantization}
    started = time.perf_counter()
    if lm.is_seq2seq:
        result.update(perplexity=None, note="perplexity on assistant tokens is for decoder-only models")
    else:
        rows, stats = ChatEncoder(lm.tokenizer, min(max_length, lm.context_window)).encode_all(conversations)
        pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
        result.update(perplexity(lm.model, rows, pad_id=pad, batch_size=batch_size))
        result["truncated"] = stats.truncated
    result["perplexity_s"] = round(time.perf_counter() - started, 1)
    pairs = [p for c in conversations if (p := prompt_and_reference(c)) is not None]
    result["references"] = len(pairs)
    if generate and pairs:
        started = time.perf_counter()
        hypotheses = _generate(lm, pairs, batch_size, max_new_tokens)
        result.update(reference_scores(hypotheses, [ref for _, ref in pairs]))
        result["generate_s"] = round(time.perf_counter() - started, 1)
        result["samples"] = [{"prompt": p[-1]["content"], "reference": r, "reply": h}
                             for (p, r), h in list(zip(pairs, hypotheses, strict=True))[:3]]
    return result


def format_eval(result: dict[str, Any]) -> str:
    """The short table ``llmos eval lm`` prints."""
    keys = ("conversations", "tokens", "perplexity", "loss", "references", "bleu", "chrf", "rougeL",
            "perplexity_s", "generate_s")
    rows = [(k, result[k]) for k in keys if result.get(k) is not None]
    return format_table(rows, title=f"eval lm: {result['model']} on {result['data']}")
