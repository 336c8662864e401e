"""Conversations as data: JSONL in the OpenAI chat fine-tuning format.

One conversation per line::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 0}, ...]}

Roles are ``system``, ``user`` and ``assistant``. An assistant message with ``"weight": 0``
stays in the context but is not trained on (as in OpenAI's format); distillation uses it
to train only on the teacher's replies. Other top-level keys (``meta``, ``id``) are kept
and ignored by training. ``llmos export`` writes the same format.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agent.errors import InputError

__all__ = ["Conversation", "ROLES", "read_conversations", "iter_conversations", "write_conversations",
           "validate_conversation", "split_heldout", "prompt_and_reference"]

Conversation = dict[str, Any]
"""``{"messages": [{"role", "content"[, "weight"]}, ...], ...}``"""

ROLES = ("system", "user", "assistant")


def validate_conversation(obj: Any, where: str = "conversation") -> Conversation:
    """Check one conversation's shape; raise :class:`InputError` naming the problem."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise InputError(f"{where}: expected an object with a 'messages' list, "
                         'e.g. {"messages": [{"role": "user", "content": "hi"}]}')
    for i, message in enumerate(obj["messages"]):
        if not isinstance(message, dict):
            raise InputError(f"{where}: message {i} is not an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"{where}: message {i} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InputError(f"{where}: message {i} needs a string 'content' (got {type(content).__name__})")
        weight = message.get("weight", 1)
        if weight not in (0, 1):
            raise InputError(f"{where}: message {i} has weight {weight!r}; use 0 (skip) or 1 (train)")
    return obj


def iter_conversations(path: str | Path) -> Iterator[Conversation]:
    """Yield the conversations of a JSONL file (or a JSON file holding a list of them)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"data file {path} does not exist: give a JSONL file of {{\"messages\": [...]}} lines")
    if path.suffix == ".json":
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc}); write one conversation per line as JSONL") from None
        if not isinstance(items, list):
            raise InputError(f"{path}: expected a JSON list of conversations (or use JSONL)")
        for i, item in enumerate(items):
            yield validate_conversation(item, f"{path} item {i}")
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number} is not valid JSON ({exc.msg}); each line must be one "
                                 "conversation object") from None
            yield validate_conversation(item, f"{path}:{number}")


def read_conversations(path: str | Path, limit: int | None = None) -> list[Conversation]:
    """All conversations of a file (the first ``limit`` when given)."""
    out: list[Conversation] = []
    for conv in iter_conversations(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(conv)
    if not out:
        raise InputError(f"{path} holds no conversations")
    return out


def write_conversations(conversations: Iterable[Conversation], path: str | Path) -> int:
    """Write conversations as JSONL (atomically: a temp file renamed into place)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for conv in conversations:
            handle.write(json.dumps(conv, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def split_heldout(conversations: list[Conversation], fraction: float, seed: int = 0,
                  max_heldout: int | None = None) -> tuple[list[Conversation], list[Conversation]]:
    """A deterministic shuffle split into (train, held-out); at least one of each when possible."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"held-out fraction {fraction} must be in [0, 1)")
    items = list(conversations)
    random.Random(seed).shuffle(items)
    count = int(round(len(items) * fraction))
    if fraction > 0 and len(items) > 1:
        count = max(count, 1)
    if max_heldout is not None:
        count = min(count, max_heldout)
    return items[count:], items[:count]


def prompt_and_reference(conv: Conversation) -> tuple[list[dict[str, str]], str] | None:
    """Split a conversation at its last assistant message: (the messages before it, its text).

    None when the conversation has no assistant reply after a user message.
    """
    messages = conv["messages"]
    for i in range(len(messages) - 1, 0, -1):
        if messages[i]["role"] == "assistant":
            prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:i]]
            if any(m["role"] == "user" for m in prompt):
                return prompt, messages[i]["content"]
            return None
    return None
