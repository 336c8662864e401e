"""Screenshot tests of the main screens (pytest-textual-snapshot; SVGs in __snapshots__/).

Regenerate after an intended change with ``pytest tests/tui/test_tui_snapshots.py
--snapshot-update``, look at the SVGs, and copy them to docs/screenshots/ for the README.
"""

from __future__ import annotations

import threading

from tests.helpers.tui import send
from tests.helpers.tui_fakes import FakeAgent
from tui.app import ChatApp
from tui.screens.chat import ChatScreen

CODE_REPLY = (
    "Sure. A generator keeps its state between calls:\n\n"
    "```python\ndef countdown(n):\n    while n > 0:\n        yield n\n        n -= 1\n```\n\n"
    "Call `list(countdown(3))` to get `[3, 2, 1]`."
)


def scripted_agent() -> FakeAgent:
    agent = FakeAgent(model_name="smollm2-135m")
    for title in ("Trip to Lisbon", "Regex help"):
        agent.chat("an earlier question", session_id=agent.new_session(title=title).id)
    fact = agent.add_memory("The user is learning Python generators", score=0.82, kind="fact")
    doc = agent.add_memory("yield pauses a function and hands a value to the caller", score=0.74,
                           kind="kb", source="python-guide.md")
    agent.enqueue(CODE_REPLY, skill="code", intent=("code_request", 0.93), sentiment=("positive", 0.41),
                  memories=[fact, doc])
    return agent


async def chat_with_history(pilot) -> None:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen)
    await send(pilot, "How do generators work in Python?")
    screen.prompt.cursor_blink = False


def test_chat_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ChatApp(scripted_agent()), run_before=chat_with_history)


def test_sessions_sidebar(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ChatApp(scripted_agent()), run_before=chat_with_history, press=["ctrl+b"])


def test_insight_panel(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ChatApp(scripted_agent()), run_before=chat_with_history, press=["ctrl+t"])


def test_wide_layout(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ChatApp(scripted_agent()), run_before=chat_with_history, press=["ctrl+t"],
                        terminal_size=(132, 36))


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ChatApp(scripted_agent()), press=["f1"])


def test_command_completion(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def typed(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.screen.prompt.cursor_blink = False

    assert snap_compare(ChatApp(scripted_agent()), run_before=typed, press=["slash", "m"])


def test_loading_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    reported = threading.Event()

    def factory(progress):  # type: ignore[no-untyped-def]
        progress(0.42, "Converting the embedded model to safetensors (first start only, ~40 s)…")
        reported.set()
        release.wait(30)
        return FakeAgent()

    app = ChatApp(agent_factory=factory)
    exit_app = app.exit

    def exit_and_release(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.set()  # let the loading worker end so the app can shut down
        exit_app(*args, **kwargs)

    app.exit = exit_and_release  # type: ignore[method-assign]

    async def wait_for_progress(pilot) -> None:  # type: ignore[no-untyped-def]
        while not reported.is_set():
            await pilot.pause(0.02)
        await pilot.pause(0.1)

    assert snap_compare(app, run_before=wait_for_progress)


README_SCREENSHOTS = {
    "chat.svg": "test_chat_screen", "sessions.svg": "test_sessions_sidebar", "insight.svg": "test_insight_panel",
    "chat-wide.svg": "test_wide_layout", "help.svg": "test_help_screen", "loading.svg": "test_loading_screen",
    "commands.svg": "test_command_completion",
}


def test_the_readme_shows_the_current_snapshots() -> None:
    """docs/screenshots/ holds copies of the snapshots; the README shows each of them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    snapshots = Path(__file__).with_name("__snapshots__") / "test_tui_snapshots"
    for shot, test in README_SCREENSHOTS.items():
        assert f"(docs/screenshots/{shot})" in readme, f"the README does not show {shot}"
        copy = (root / "docs" / "screenshots" / shot).read_bytes()
        assert copy == (snapshots / f"{test}.svg").read_bytes(), (
            f"docs/screenshots/{shot} is out of date: copy {test}.svg from {snapshots} over it")
