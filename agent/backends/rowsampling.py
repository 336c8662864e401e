"""The next token of every row of a batch, each row sampled with its own options.

A row (a :class:`~agent.backends.batching._Request`) carries ``options`` (temperature,
top-k/p, repetition penalty, seed) and its own ``rng``. A row that cannot be sampled (a seed
torch refuses, NaN probabilities) is reported with its error, not raised: the scheduler ends
that row alone and its neighbours carry on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.errors import InputError

__all__ = ["choose_tokens", "sample_row"]


def choose_tokens(logits: Any, rows: Sequence[Any], seen: Any) -> tuple[Any, dict[int, BaseException]]:
    """Next token per row: repetition penalty, then greedy or temperature/top-k/top-p sampling
    (the order transformers' ``generate`` applies them in).

    Returns the tokens and, by row index, the error of each row that could not be sampled (a
    seed torch refuses, NaN probabilities): those rows' tokens are meaningless and the caller
    ends them with their own error, so one request never fails its neighbours."""
    import torch

    penalty = torch.tensor([[r.options.repetition_penalty] for r in rows], dtype=logits.dtype, device=logits.device)
    logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
    tokens = logits.argmax(-1)
    errors: dict[int, BaseException] = {}
    for i, req in enumerate(rows):
        if req.options.greedy:
            continue
        try:
            tokens[i] = sample_row(logits[i], req)
        except Exception as exc:
            errors[i] = exc
    return tokens, errors


def sample_row(row: Any, req: Any) -> Any:
    """One row's sampled token (temperature, top-k, top-p, the request's own generator)."""
    import torch

    opts = req.options
    row = row / opts.temperature
    if opts.top_k and opts.top_k < row.shape[-1]:
        kth = torch.topk(row, opts.top_k).values[-1]
        row = row.masked_fill(row < kth, float("-inf"))
    if opts.top_p < 1.0:
        ordered, order = torch.sort(row, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) >= opts.top_p  # keep the token that crosses top_p
        row = row.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    if req.rng is None and opts.seed is not None:
        try:
            req.rng = torch.Generator(device=row.device).manual_seed(opts.seed)
        except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
            raise InputError(f"seed {opts.seed} is not usable ({exc}): use an integer from -2**63 to 2**63-1") from exc
    return torch.multinomial(row.softmax(-1), 1, generator=req.rng)[0]
