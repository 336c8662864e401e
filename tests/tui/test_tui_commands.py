"""Slash-command parsing and completion, the export format and the package's public API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import tui
from tests.helpers.public_api import api_problems
from tests.helpers.tui_fakes import Message
from tui import commands
from tui.export import default_export_path, session_markdown


def test_public_api() -> None:
    assert tui.__all__ == ["ChatApp", "build_app", "run_chat"]
    assert api_problems(tui) == []


def test_ui_commands_are_parsed_and_agent_commands_are_not() -> None:
    parsed = commands.parse("/export  notes.md ")
    assert parsed is not None and parsed[0].name == "/export" and parsed[1] == "notes.md"
    assert commands.parse("/NEW") is not None
    assert commands.parse("/qa what is llmos?") is None  # the agent handles it
    assert commands.parse("hello /help") is None
    assert commands.parse("/nonsense") is None


def test_completion() -> None:
    assert [c.name for c in commands.matches("/m")] == ["/memory", "/model"]
    assert commands.complete("/m") == "/m"  # ambiguous, and no longer common prefix
    assert commands.complete("/mo") == "/model "
    assert commands.complete("/su") == "/summarize "
    assert commands.complete("/xyz") == "/xyz"
    assert commands.matches("/qa text") == []
    every = {c.name for c in commands.COMMANDS}
    assert {"/qa", "/summarize", "/code", "/help", "/new", "/memory", "/forget", "/export", "/model"} <= every


def test_export_markdown_is_neutralized(tmp_path: Path) -> None:
    now = datetime(2025, 1, 1)
    history = [
        Message("user", "hi [bold]there[/]", now),
        Message("assistant", "hello\x1b]0;pwned\x07", now, {"skill": "qa", "intent": {"label": "greet", "score": 0.9}}),
    ]
    text = session_markdown("My chat", history, model="smol")
    assert text.startswith("# My chat\n")
    assert "## You\n\nhi [bold]there[/]" in text
    assert "## llmos\n\nhello␛]0;pwned␇" in text
    assert "\x1b" not in text and "\x07" not in text
    assert '"skill": "qa"' in text
    path = default_export_path("My chat: #1!", tmp_path)
    assert path.parent == tmp_path and path.name.startswith("llmos-my-chat-1-") and path.suffix == ".md"


def test_chat_takes_a_model_over_the_config(tmp_path: Path, monkeypatch) -> None:
    """`llmos chat --model NAME` reaches the agent the app builds (and the CLI passes it on)."""
    import agent
    from agent.cli.main import build_parser

    seen = []
    monkeypatch.setattr(agent.Agent, "from_config", classmethod(lambda cls, config, **kw: seen.append(config)))
    monkeypatch.setenv("LLMOS_DATA_DIR", str(tmp_path))
    app = tui.build_app(None, model="qwen2.5-coder-0.5b")
    app._factory(lambda _f, _m: None)
    assert seen[0].model.name == "qwen2.5-coder-0.5b"
    args = build_parser().parse_args(["chat", "--model", "qwen2.5-coder-0.5b"])
    assert args.model == "qwen2.5-coder-0.5b"
