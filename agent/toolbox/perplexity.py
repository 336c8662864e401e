"""Perplexity on assistant tokens: how surprised a model is by the replies in a data set.

Token-weighted: the summed negative log-likelihood of every labelled token divided by
their count, then exponentiated, so long replies count for what they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from agent.toolbox.sft_data import IGNORE, collate

__all__ = ["perplexity"]


def perplexity(model: Any, rows: Sequence[dict[str, list[int]]], *, pad_id: int, batch_size: int = 8,
               autocast_dtype: Any = None) -> dict[str, float]:
    """``{"perplexity", "loss", "tokens"}`` of ``model`` on encoded ``rows`` (see ``ChatEncoder``).

    Rows are batched by length to waste little on padding. ``autocast_dtype`` (e.g.
    ``torch.bfloat16``) evaluates under mixed precision, as training ran.
    """
    import torch

    if not rows:
        return {"perplexity": float("nan"), "loss": float("nan"), "tokens": 0}
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    total_nll, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext())
    try:
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), batch_size):
                batch = collate([rows[i] for i in order[start:start + batch_size]], pad_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                # Predict token t+1 from position t; only labelled targets count.
                shift_logits = logits[:, :-1].float()
                targets = batch["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                        targets.reshape(-1), ignore_index=IGNORE, reduction="sum")
                total_nll += float(nll)
                total_tokens += int((targets != IGNORE).sum())
    finally:
        model.train(was_training)
    loss = total_nll / max(total_tokens, 1)
    return {"perplexity": round(math.exp(min(loss, 50.0)), 4), "loss": round(loss, 5), "tokens": total_tokens}
