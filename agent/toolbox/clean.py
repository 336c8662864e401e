"""Cleaning a conversation corpus before training on it.

In order: normalise every message (NFC, control characters out, whitespace tidied,
consecutive messages of one role merged), optionally mask personal data, drop
conversations that are empty or outside the length limits, then drop exact and near
duplicates (the first occurrence stays). :class:`CleanReport` says what was removed and why.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.toolbox.conversations import Conversation
from agent.toolbox.neardup import near_duplicates
from agent.toolbox.pii import mask_pii

__all__ = ["CleanOptions", "CleanReport", "clean_conversations", "normalize_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class CleanOptions:
    """What :func:`clean_conversations` keeps."""

    mask_pii: bool = False
    """Replace e-mail addresses, phone numbers and card numbers by [EMAIL], [PHONE], [CARD]."""
    min_assistant_turns: int = 1
    """Drop conversations with fewer assistant replies (nothing to learn from)."""
    min_chars: int = 1
    """Drop conversations whose messages hold fewer characters in all."""
    max_chars: int = 20_000
    """Drop conversations longer than this in all (usually pasted logs or errors)."""
    max_message_chars: int = 8_000
    """Drop conversations with a single message longer than this."""
    dedup: bool = True
    """Drop exact duplicates (same roles and text after normalisation)."""
    near_dup_threshold: float | None = 0.85
    """Drop near duplicates at or above this word-3-gram Jaccard similarity (None: off)."""


@dataclass
class CleanReport:
    """What cleaning did, for the record and for the CLI."""

    input: int = 0
    kept: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    pii_masked: Counter[str] = field(default_factory=Counter)
    messages_merged: int = 0
    messages_dropped_empty: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["removed"] = dict(self.removed)
        data["pii_masked"] = dict(self.pii_masked)
        return data

    def summary(self) -> str:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(self.removed.items())) or "none"
        masked = ", ".join(f"{k} {v}" for k, v in sorted(self.pii_masked.items())) or "none"
        return (f"kept {self.kept} of {self.input} conversations; removed: {removed}; "
                f"masked: {masked}; merged {self.messages_merged} and dropped {self.messages_dropped_empty} "
                "empty messages")


def normalize_text(text: str) -> str:
    """NFC, no control characters (newlines and tabs kept), tidy whitespace."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _normalize_messages(conv: Conversation, options: CleanOptions, report: CleanReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in conv["messages"]:
        content = normalize_text(message["content"])
        if options.mask_pii:
            content = mask_pii(content, report.pii_masked)
        if not content:
            report.messages_dropped_empty += 1
            continue
        if out and out[-1]["role"] == message["role"]:
            # Two messages in a row from one side (a chat user hitting enter twice) read as
            # one turn to a chat template; merging keeps the turns alternating.
            out[-1]["content"] += "\n" + content
            report.messages_merged += 1
            continue
        out.append({**message, "content": content})
    return out


def _reason_to_drop(messages: list[dict[str, Any]], options: CleanOptions) -> str | None:
    if not messages:
        return "empty"
    replies = sum(1 for i, m in enumerate(messages) if m["role"] == "assistant"
                  and any(p["role"] == "user" for p in messages[:i]))
    if replies < options.min_assistant_turns:
        return "no_assistant_reply"
    total = sum(len(m["content"]) for m in messages)
    if total < options.min_chars:
        return "too_short"
    if total > options.max_chars:
        return "too_long"
    if any(len(m["content"]) > options.max_message_chars for m in messages):
        return "message_too_long"
    return None


def _fingerprint(messages: list[dict[str, Any]]) -> str:
    text = "\x1e".join(f"{m['role']}\x1f{' '.join(m['content'].lower().split())}" for m in messages)
    return hashlib.sha1(text.encode()).hexdigest()


def clean_conversations(conversations: Iterable[Conversation],
                        options: CleanOptions | None = None) -> tuple[list[Conversation], CleanReport]:
    """Cleaned conversations (in input order) and a report of what was changed or removed."""
    options = options or CleanOptions()
    report = CleanReport()
    kept: list[Conversation] = []
    seen: set[str] = set()
    for conv in conversations:
        report.input += 1
        messages = _normalize_messages(conv, options, report)
        reason = _reason_to_drop(messages, options)
        if reason is None and options.dedup:
            fingerprint = _fingerprint(messages)
            reason = "exact_duplicate" if fingerprint in seen else None
            seen.add(fingerprint)
        if reason is not None:
            report.removed[reason] += 1
            continue
        kept.append({**conv, "messages": messages})
    if options.near_dup_threshold is not None and len(kept) > 1:
        texts = ["\n".join(m["content"] for m in c["messages"]) for c in kept]
        dups = near_duplicates(texts, options.near_dup_threshold)
        if dups:
            report.removed["near_duplicate"] += len(dups)
            kept = [c for i, c in enumerate(kept) if i not in dups]
    report.kept = len(kept)
    return kept, report
