"""Timing a language model: time to first token, decode speed, weight bytes and memory bandwidth.

Models layer: the measurements every benchmark shares (``llmos bench``, the quantization
bench, ``python -m agent.models.fastbench``), so they all time the same thing the same way.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

__all__ = ["measure_generation", "measure_bandwidth_gbs", "weight_bytes", "prompt_of", "median", "PROMPT_50"]

PROMPT_50 = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
_FILLER = ("The history of the printing press shows how a single invention can change the way people share ideas. "
           "Before movable type, books were copied by hand, which made them rare and expensive. ")


def median(values: list[float]) -> float:
    """The median rounded to 2 places; NaN for no values (a bench row that measured nothing)."""
    return round(statistics.median(values), 2) if values else float("nan")


def measure_bandwidth_gbs(size_mb: int = 512, repeats: int = 5) -> float:
    """Memory read bandwidth as torch sees it (a sum over a buffer larger than the caches)."""
    import torch

    buf = torch.ones(size_mb * 1024 * 1024 // 4, dtype=torch.float32)
    buf.sum()  # touch the pages
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        buf.sum()
        times.append(time.perf_counter() - t)
    return round(buf.numel() * 4 / statistics.median(times) / 1e9, 2)


def prompt_of(model: Any, tokens: int) -> list[dict[str, str]]:
    """A one-message chat of about ``tokens`` prompt tokens for ``model`` (a story request, or
    filler text to summarize for long prompts)."""
    text = PROMPT_50
    if tokens > 80:
        body = _FILLER * (tokens // max(model.count_tokens(_FILLER), 1) + 1)
        ids = model.tokenizer(body, add_special_tokens=False)["input_ids"][: tokens - 40]
        text = model.tokenizer.decode(ids) + "\n\nSummarize the text above in a long paragraph."
    return [{"role": "user", "content": text}]


def measure_generation(model: Any, prompt_tokens: int, new_tokens: int = 96, repeats: int = 3) -> dict[str, float]:
    """Median time to first token and decode tokens/s through ``LanguageModel.stream``.

    Every repeat prefills the whole prompt: the fast decoder's cached prefix is dropped first
    (a repeated prompt would otherwise reuse it and time almost no prefill at all)."""
    messages = prompt_of(model, prompt_tokens)
    ttft, decode, real_prompt = [], [], 0
    fast = getattr(model, "fast", None)
    for _ in range(repeats):
        if fast is not None:
            fast.reset()
        start = time.perf_counter()
        stream = model.stream(messages, temperature=0.0, max_new_tokens=new_tokens, repetition_penalty=1.1)
        first = None
        for _piece in stream:
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        real_prompt = stream.prompt_tokens
        if first is None:
            continue
        ttft.append((first - start) * 1000)
        if stream.completion_tokens > 1 and end > first:
            decode.append((stream.completion_tokens - 1) / (end - first))
    return {"prompt_tokens": real_prompt, "ttft_ms": median(ttft), "decode_tokens_per_s": median(decode)}


def weight_bytes(model: Any) -> int:
    """Bytes of weights read per decoded token (every matrix once; the embedding table is
    read as the tied lm_head)."""
    fast = getattr(model, "fast", None)
    if fast is not None and hasattr(fast, "weight_bytes"):
        return int(fast.weight_bytes)
    seen: set[int] = set()
    total = 0
    for tensor in list(model.model.parameters()) + list(model.model.buffers()):
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total
