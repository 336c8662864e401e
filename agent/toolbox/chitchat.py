"""The Chit Chat Challenge corpus (``chitchat-dataset`` on PyPI, MIT) as llmos conversations.

7,168 human-to-human chats collected by BYU's PCC lab; 4,018 of them have two speakers
(the rest are one person waiting for a partner) and those are what we convert. The
first speaker plays the user, the second the assistant; consecutive messages of one
speaker form one turn. The data ships inside the package: nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.toolbox.conversations import Conversation

__all__ = ["chitchat_path", "chitchat_conversations"]


def chitchat_path() -> Path:
    """The ``dataset.json`` shipped in ``chitchat-dataset``, found without importing it."""
    spec = importlib.util.find_spec("chitchat_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the chitchat corpus is not installed: pip install chitchat-dataset")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset.json"
    if not path.is_file():
        raise InputError(f"{path} is missing: reinstall it with pip install --force-reinstall chitchat-dataset")
    return path


def _convert(key: str, record: dict[str, Any], system: str | None) -> Conversation | None:
    groups = [g for g in record.get("messages", []) if g]
    speakers: list[str] = []
    for group in groups:
        sender = group[0].get("sender")
        if sender not in speakers:
            speakers.append(sender)
    if len(speakers) != 2:
        return None
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for group in groups:
        role = "user" if group[0].get("sender") == speakers[0] else "assistant"
        text = "\n".join(u.get("text", "").strip() for u in group if u.get("text", "").strip())
        if not text:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()  # a trailing user turn has no reply to learn from
    if not any(m["role"] == "assistant" for m in messages):
        return None
    return {"messages": messages, "meta": {"source": "chitchat", "id": key, "topic": record.get("prompt", "")}}


def chitchat_conversations(limit: int | None = None, system: str | None = None,
                           path: Path | None = None) -> Iterator[Conversation]:
    """Yield the two-speaker chats as ``{"messages": [...], "meta": {...}}`` in file order."""
    with (path or chitchat_path()).open(encoding="utf-8") as handle:
        data = json.load(handle)
    count = 0
    for key, record in data.items():
        if limit is not None and count >= limit:
            return
        conv = _convert(key, record, system)
        if conv is not None:
            count += 1
            yield conv
