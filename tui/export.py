"""Export a session to Markdown (text is neutralized: `cat` on the file is safe too)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from tui.sanitize import neutralize, one_line
from tui.types import MessageLike

__all__ = ["session_markdown", "default_export_path", "write_export"]


def session_markdown(title: str, messages: Sequence[MessageLike], *, agent_name: str = "llmos",
                     model: str = "") -> str:
    """The session as a Markdown document: a heading, then one section per message."""
    lines = [f"# {one_line(title or 'Chat')}", ""]
    if model:
        lines += [f"*{one_line(agent_name)} · model {one_line(model)}*", ""]
    for message in messages:
        who = "You" if message.role == "user" else one_line(agent_name)
        lines += [f"## {who}", "", neutralize(message.content).rstrip(), ""]
        meta = message.meta or {}
        if message.role == "assistant" and meta:
            facts = {key: meta[key] for key in ("intent", "sentiment", "skill", "finish_reason") if meta.get(key)}
            if facts:
                lines += [f"<!-- {neutralize(json.dumps(facts, ensure_ascii=False)).replace('--', '- -')} -->", ""]
    return "\n".join(lines).rstrip() + "\n"


def default_export_path(title: str, folder: Path | None = None) -> Path:
    """``llmos-<title-slug>-<YYYYmmdd-HHMMSS>.md`` in ``folder`` (default: the current directory)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (title or "chat").lower()).strip("-")[:40] or "chat"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (folder or Path.cwd()) / f"llmos-{slug}-{stamp}.md"


def write_export(path: Path, markdown: str) -> Path:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    return path
