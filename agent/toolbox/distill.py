"""Distillation data: a teacher model's replies to a set of prompts (``--distill-from``).

Sequence-level distillation: the teacher (a bigger model, usually on a GPU) answers each
prompt, and the student is fine-tuned on those answers with :func:`agent.toolbox.sft.train_lm`.
It works across tokenizers, since only text passes between the two.

Prompts are conversations (JSONL): everything up to the last user message is the prompt;
earlier assistant replies stay as context with ``"weight": 0``, so the student learns
only the teacher's words. A ``.txt`` file gives one single-turn prompt per line.
Generation is batched (prompts sorted by length to pad little) and resumable: each batch
is appended and flushed to the output, and a restarted run skips prompts already answered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.toolbox.conversations import Conversation, read_conversations

__all__ = ["distill_prompts", "generate_teacher_data"]

log = logging.getLogger(__name__)


def _prompt_of(conv: Conversation) -> list[dict[str, Any]] | None:
    messages = conv["messages"]
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        return None
    prompt = []
    for m in messages[: last_user + 1]:
        item: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        if m["role"] == "assistant":
            item["weight"] = 0  # context only: the student learns the teacher's reply, not these
        prompt.append(item)
    return prompt


def distill_prompts(path: str | Path, limit: int | None = None) -> list[list[dict[str, Any]]]:
    """The prompts in a conversations JSONL file or a plain-text file of one prompt per line."""
    path = Path(path).expanduser()
    if path.suffix == ".txt":
        if not path.is_file():
            raise InputError(f"prompt file {path} does not exist")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        prompts = [[{"role": "user", "content": line}] for line in lines]
    else:
        prompts = [p for conv in read_conversations(path) if (p := _prompt_of(conv)) is not None]
    prompts = prompts[:limit] if limit else prompts
    if not prompts:
        raise InputError(f"{path} holds no prompt with a user message for the teacher to answer")
    return prompts


def _key(prompt: list[dict[str, Any]]) -> str:
    return hashlib.sha1(json.dumps([(m["role"], m["content"]) for m in prompt]).encode()).hexdigest()[:20]


def _answered(out: Path) -> set[str]:
    """Keys already in ``out``; a torn last line (a crash mid-write) is dropped from the file."""
    if not out.is_file():
        return set()
    keys, good = set(), []
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            keys.add(json.loads(line)["meta"]["prompt_id"])
            good.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in good), encoding="utf-8")
    tmp.replace(out)
    return keys


def generate_teacher_data(teacher: str, prompts_path: str | Path, out: str | Path, *, batch_size: int = 8,
                          max_new_tokens: int = 128, limit: int | None = None, device: str = "auto",
                          progress: bool = True) -> dict[str, Any]:
    """Answer every prompt with ``teacher`` into the JSONL file ``out``; return counts and speed."""
    from agent.models.loader import load_model

    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    prompts = distill_prompts(prompts_path, limit)
    done = _answered(out)
    pending = [p for p in prompts if _key(p) not in done]
    stats: dict[str, Any] = {"teacher": teacher, "prompts": len(prompts), "reused": len(prompts) - len(pending),
                             "generated": 0, "empty": 0, "teacher_s": 0.0, "data": str(out)}
    if not pending:
        return stats
    lm = load_model(teacher, device=device, fast=False)  # batched generate runs through transformers
    pending.sort(key=lambda p: sum(len(m["content"]) for m in p))
    started = time.perf_counter()
    bar = _bar(len(prompts), len(prompts) - len(pending)) if progress else None
    with out.open("a", encoding="utf-8") as handle:
        for start in range(0, len(pending), batch_size):
            batch = pending[start:start + batch_size]
            replies = lm.generate_batch([[{k: m[k] for k in ("role", "content")} for m in p] for p in batch],
                                        temperature=0.0, max_new_tokens=max_new_tokens)
            for prompt, reply in zip(batch, replies, strict=True):
                if not reply.strip():
                    stats["empty"] += 1
                    continue
                record = {"messages": [*prompt, {"role": "assistant", "content": reply.strip()}],
                          "meta": {"prompt_id": _key(prompt), "teacher": teacher}}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                stats["generated"] += 1
            handle.flush()
            os.fsync(handle.fileno())  # a crash loses at most the batch in flight
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    stats["teacher_s"] = round(time.perf_counter() - started, 1)
    del lm
    _free_accelerator()
    return stats


def _bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="teacher replies", unit="prompt", file=sys.stderr)


def _free_accelerator() -> None:
    """Give the teacher's GPU memory back before the student trains."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
