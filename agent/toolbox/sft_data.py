"""Turning conversations into token ids with the loss on assistant tokens only.

The text is rendered with the model's own chat template (or, for models without one,
the plain ``User: ... / Assistant:`` transcript that :class:`~agent.models.model.LanguageModel`
prompts them with), so training sees exactly the format the model is prompted with.
Each assistant reply is located as the span between "the conversation so far plus the
generation prompt" and "the conversation including this reply"; that span (the reply
and its end-of-turn token) carries labels, everything else is ``-100``.

The text is tokenized span by span rather than in one piece: at inference the prompt
ends where the reply begins, so a token merging across that boundary would never occur
then and should not be learned now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import InputError
from agent.toolbox.conversations import Conversation

__all__ = ["ChatEncoder", "EncodeStats", "collate", "IGNORE"]

IGNORE = -100
_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass
class EncodeStats:
    """How many conversations were encoded, cut or skipped."""

    encoded: int = 0
    truncated: int = 0
    skipped_no_target: int = 0
    tokens: int = 0
    target_tokens: int = 0


class ChatEncoder:
    """Encode conversations for causal-LM fine-tuning with one tokenizer."""

    def __init__(self, tokenizer: Any, max_length: int = 512) -> None:
        if max_length < 16:
            raise InputError(f"max_length {max_length} is too small to hold a conversation; use 128 or more")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.templated = bool(getattr(tokenizer, "chat_template", None))

    # ---- text and spans ------------------------------------------------------------
    def _render(self, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
        clean = [{"role": m["role"], "content": m["content"]} for m in messages]
        return str(self.tokenizer.apply_chat_template(clean, tokenize=False, add_generation_prompt=generation_prompt))

    def _template_spans(self, messages: Sequence[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
        full = self._render(messages, False)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant" or message.get("weight", 1) == 0 or i == 0:
                continue
            before = self._render(messages[:i], True)
            upto = self._render(messages[: i + 1], False)
            if not (full.startswith(upto) and upto.startswith(before)):
                return full, self._located_spans(full, messages)
            spans.append((len(before), len(upto)))
        return full, spans

    def _located_spans(self, full: str, messages: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
        """Fallback for templates that rewrite earlier turns: find each reply in the text."""
        eos = self.tokenizer.eos_token or ""
        spans, cursor = [], 0
        for i, message in enumerate(messages):
            start = full.find(message["content"], cursor) if message["content"] else -1
            if start < 0:
                continue
            end = start + len(message["content"])
            if eos and full.startswith(eos, end):
                end += len(eos)
            cursor = end
            if message["role"] == "assistant" and message.get("weight", 1) != 0 and i > 0:
                spans.append((start, end))
        return spans

    def _plain_spans(self, messages: Sequence[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
        """The transcript format of models without a chat template; replies end with EOS."""
        eos = self.tokenizer.eos_token or ""
        parts: list[str] = []
        spans = []
        length = 0
        for i, message in enumerate(messages):
            head = ("\n" if i else "") + f"{_NAMES[message['role']]}:"
            body = " " + message["content"] + (eos if message["role"] == "assistant" else "")
            if message["role"] == "assistant" and message.get("weight", 1) != 0 and i > 0:
                spans.append((length + len(head), length + len(head) + len(body)))
            parts += [head, body]
            length += len(head) + len(body)
        return "".join(parts), spans

    def spans(self, conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text of ``conv`` and the character spans that carry the loss."""
        messages = conv["messages"]
        return self._template_spans(messages) if self.templated else self._plain_spans(messages)

    # ---- tokens --------------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def encode(self, conv: Conversation, stats: EncodeStats | None = None) -> dict[str, list[int]] | None:
        """``{"input_ids", "labels", "attention_mask"}`` for one conversation, or None when
        no assistant token is left to learn from (after truncation to ``max_length``)."""
        stats = stats if stats is not None else EncodeStats()
        text, spans = self.spans(conv)
        ids: list[int] = []
        labels: list[int] = []
        bos = self.tokenizer.bos_token_id
        if not self.templated and bos is not None and self.tokenizer("x")["input_ids"][:1] == [bos]:
            ids, labels = [bos], [IGNORE]  # as LanguageModel.encode_prompt adds it to plain prompts
        cursor = 0
        for start, end in spans:
            context = self._ids(text[cursor:start])
            target = self._ids(text[start:end])
            ids += context + target
            labels += [IGNORE] * len(context) + target
            cursor = end
        tail = self._ids(text[cursor:])
        ids += tail
        labels += [IGNORE] * len(tail)
        if len(ids) > self.max_length:
            stats.truncated += 1
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        targets = sum(1 for label in labels if label != IGNORE)
        if targets == 0:
            stats.skipped_no_target += 1
            return None
        stats.encoded += 1
        stats.tokens += len(ids)
        stats.target_tokens += targets
        return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}

    def encode_all(self, conversations: Iterable[Conversation]) -> tuple[list[dict[str, list[int]]], EncodeStats]:
        stats = EncodeStats()
        rows = [row for conv in conversations if (row := self.encode(conv, stats)) is not None]
        return rows, stats


def collate(rows: Sequence[dict[str, list[int]]], pad_id: int, multiple_of: int = 1) -> dict[str, Any]:
    """Right-pad a batch: pad ids, attention 0 and labels -100 on the padding."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    width = -(-width // multiple_of) * multiple_of
    batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for row in rows:
        pad = width - len(row["input_ids"])
        batch["input_ids"].append(row["input_ids"] + [pad_id] * pad)
        batch["attention_mask"].append(row["attention_mask"] + [0] * pad)
        batch["labels"].append(row["labels"] + [IGNORE] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
