"""Pilot tests: the sessions sidebar, the UI slash commands, export, memory, insight, copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from tests.helpers.tui import (
    SIZE,
    chat,
    messages,
    notes,
    prompt,
    screen_lines,
    send,
    settle,
    type_text,
    wait_for,
)
from tests.helpers.tui_fakes import FakeAgent
from tui.app import ChatApp
from tui.screens import AskText, Confirm, HelpScreen, MemoryScreen, ModelScreen
from tui.widgets import InsightPanel, SessionSidebar
from tui.widgets.insight import MemoryRow

pytestmark = pytest.mark.anyio


def titles(app: ChatApp) -> list[str]:
    options = chat(app).sidebar.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_sidebar_lists_switches_creates_renames_and_deletes(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "first topic")
        first = chat(app).session_id
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert chat(app).session_id != first and messages(app) == []
        await send(pilot, "second topic")
        second = chat(app).session_id
        await pilot.press("ctrl+b")
        await pilot.pause()
        sidebar = chat(app).sidebar
        assert sidebar.display and app.focused is sidebar.options
        assert titles(app) == ["● second topic", "  first topic"]
        # switch: down to the first session, Enter
        await pilot.press("down", "enter")
        await settle(pilot)
        assert chat(app).session_id == first
        assert [v.text for v in messages(app)] == ["first topic", "You said: first topic"]
        assert chat(app).status.session == "first topic"
        # rename
        sidebar.options.focus()
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, AskText)
        app.screen.query_one(Input).value = "Renamed [b]chat[/b]"
        await pilot.press("enter")
        await pilot.pause()
        assert agent._sessions[first].title == "Renamed [b]chat[/b]"
        assert "Renamed [b]chat[/b]" in " ".join(titles(app))
        # delete the current one: confirm with y
        sidebar.options.focus()
        sidebar.options.highlighted = 1
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot)
        assert first not in agent._sessions and second in agent._sessions
        assert chat(app).session_id is None and messages(app) == []
        assert titles(app) == ["  second topic"]


async def test_switching_sessions_stops_a_running_reply(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "older")
        older = chat(app).session_id
        await pilot.press("ctrl+n")
        await settle(pilot)
        agent.hold()
        agent.enqueue([f"w{i} " for i in range(50)])
        await type_text(pilot, "long one")
        await pilot.press("enter")
        agent.allow(2)
        await wait_for(pilot, lambda: messages(app)[-1].text == "w0 w1 ")
        await chat(app).open_session(older)
        await settle(pilot)
        agent.release()
        assert not chat(app).generating
        assert [v.text for v in messages(app)] == ["older", "You said: older"]
        stopped = agent.history(agent.sessions()[0].id)[-1]
        assert stopped.meta["finish_reason"] == "cancelled"


async def test_slash_new_help_and_model(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/new Project notes")
        assert agent.sessions()[0].title == "Project notes"
        assert chat(app).session_id == agent.sessions()[0].id
        assert chat(app).status.session == "Project notes"
        assert prompt(app).text == ""
        await send(pilot, "/model")
        assert isinstance(app.screen, ModelScreen)
        await pilot.press("escape")
        await send(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await send(pilot, "/nonsense")
        assert any("Unknown command /nonsense" in n for n in notes(app))
        assert prompt(app).text == "/nonsense" and agent.calls == []


async def test_agent_commands_go_to_the_agent(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        for text in ("/qa what is llmos?", "/summarize a long text", "/code a fizzbuzz"):
            await send(pilot, text)
        assert [call[0] for call in agent.calls] == ["/qa what is llmos?", "/summarize a long text",
                                                     "/code a fizzbuzz"]


async def test_export_writes_markdown(agent: FakeAgent, tmp_path: Path) -> None:
    agent.enqueue("Use `print`:\n\n```python\nprint('hi')\n```")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/export")
        assert any("Nothing to export" in n for n in notes(app))
        await send(pilot, "how do I print?")
        target = tmp_path / "out" / "chat.md"
        await send(pilot, f"/export {target}")
        text = target.read_text(encoding="utf-8")
        assert text.startswith("# how do I print?")
        assert "## You\n\nhow do I print?" in text and "```python\nprint('hi')\n```" in text
        assert any(str(target) in n for n in notes(app))
        written = chat(app).export(str(tmp_path))  # a folder: a generated file name inside it
        assert written is not None and written.parent == tmp_path and written.suffix == ".md"


async def test_ctrl_s_asks_where_and_says_the_full_path(agent: FakeAgent, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello there")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, AskText), "Ctrl+S asks before it writes"
        field = app.screen.query_one(Input)
        default = Path(field.value)
        assert default.is_absolute() and default.parent == tmp_path and default.name.startswith("llmos-hello-there-")
        assert list(tmp_path.iterdir()) == [], "nothing is written before the user says where"
        await pilot.press("escape")
        await pilot.pause()
        assert list(tmp_path.iterdir()) == [] and not any("Exported" in n for n in notes(app))
        # pick another place
        target = tmp_path / "notes" / "greeting.md"
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert "hello there" in target.read_text(encoding="utf-8")
        assert any(f"Exported 2 messages to {target}" in n for n in notes(app)), notes(app)
        # the same file again: asked before it is replaced
        await send(pilot, "/export")
        assert isinstance(app.screen, AskText)
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert "You said: hello there" in target.read_text(encoding="utf-8")
        # a relative /export FILE is said in full too
        await send(pilot, "/export mine.md")
        assert (tmp_path / "mine.md").is_file()
        assert any(f"to {tmp_path / 'mine.md'}" in n for n in notes(app)), notes(app)


async def test_insight_panel_shows_the_turn_and_forgets_a_memory(agent: FakeAgent) -> None:
    kept = agent.add_memory("The user's name is Ada", score=0.91, kind="fact")
    dropped = agent.add_memory("The user [red]likes[/] tea", score=0.62, kind="turn", source="chat")
    agent.enqueue("Hello Ada!", skill="qa", intent=("greeting", 0.97), sentiment=("positive", 0.8),
                  memories=[kept, dropped])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi, remember me?")
        await pilot.press("ctrl+t")
        await pilot.pause()
        panel = chat(app).query_one(InsightPanel)
        assert panel.display
        summary = str(panel.query_one("#insight-summary").render())
        assert "greeting (0.97)" in summary and "positive (0.80)" in summary and "qa" in summary
        assert "2 recalled" in summary and "frustrated 0.05" in summary
        timings = str(panel.query_one("#insight-timings").render())
        assert "generate" in timings and "tok/s" in timings
        rows = list(panel.query(MemoryRow))
        assert str(rows[0].query_one(".memory-text").render()).startswith("0.91 fact\nThe user's name is Ada")
        assert str(rows[1].query_one(".memory-text").render()).startswith("0.62 turn · chat\n")
        assert "The user [red]likes[/] tea" in str(rows[1].query_one(".memory-text").render())
        await pilot.click(rows[1].query_one("Button"))
        await pilot.pause()
        assert dropped.id not in agent._memories and kept.id in agent._memories
        assert len(panel.query(MemoryRow)) == 1
        await pilot.press("ctrl+t")
        assert not panel.display


async def test_focusing_an_older_reply_shows_its_insight(agent: FakeAgent) -> None:
    agent.enqueue("one", intent=("first_intent", 0.5))
    agent.enqueue("two", intent=("second_intent", 0.6))
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "a")
        await send(pilot, "b")
        await pilot.press("ctrl+t")
        panel = chat(app).query_one(InsightPanel)
        assert "second_intent" in str(panel.query_one("#insight-summary").render())
        messages(app)[1].focus()
        await pilot.pause()
        assert "first_intent" in str(panel.query_one("#insight-summary").render())


async def test_memory_screen_and_forget(agent: FakeAgent) -> None:
    for text in ("likes tea", "works at ACME", "has a cat"):
        agent.add_memory(text)
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/memory")
        assert isinstance(app.screen, MemoryScreen)
        listing = app.screen.query_one(OptionList)
        assert listing.option_count == 3
        listing.highlighted = 0
        await pilot.press("d")
        await pilot.pause()
        assert len(agent._memories) == 2 and listing.option_count == 2
        await pilot.press("escape")
        await send(pilot, "/forget 2")
        assert list(agent._memories) == [3]
        await send(pilot, "/forget x")
        assert any("Usage: /forget" in n for n in notes(app))
        await send(pilot, "/forget")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert agent._memories == {}


async def test_copy_message_code_block_and_last_reply(agent: FakeAgent) -> None:
    agent.enqueue("Two blocks:\n\n```python\nx = 1\n```\n\nand\n\n```sh\necho hi\n```\n")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "code please")
        await pilot.press("ctrl+r")
        assert app.clipboard.startswith("Two blocks:") and "echo hi" in app.clipboard
        reply = messages(app)[-1]
        reply.focus()
        await pilot.press("b")
        assert app.clipboard == "x = 1"
        await pilot.press("b")
        assert app.clipboard == "echo hi"
        await pilot.press("c")
        assert app.clipboard == reply.text
        messages(app)[0].focus()
        await pilot.press("c")
        assert app.clipboard == "code please"
        assert any("code block 2/2" in n for n in notes(app))


def test_sidebar_message_types_exist() -> None:
    assert SessionSidebar.Selected("x").session_id == "x"


async def test_at_80_columns_the_panels_take_turns_and_titles_keep_to_one_line(agent: FakeAgent) -> None:
    long_title = "A rather long question about coroutines"
    long_id = agent.chat(long_title).session_id
    agent.chat("Short one")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        screen = chat(app)
        assert not screen.sidebar.display and not screen.insight.display
        await pilot.press("ctrl+t")
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert screen.sidebar.display and not screen.insight.display, "one side panel at a time at 80 columns"
        assert screen.conversation.size.width >= 50
        rows = screen_lines(app)
        session_rows = [row for row in rows if "A rather long" in row]
        assert len(session_rows) == 1 and "…" in session_rows[0], rows
        assert not any(row.lstrip().startswith("coroutines") for row in rows), "a title never wraps"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.insight.display and not screen.sidebar.display
        # open a session from the sidebar: at this width the sidebar closes and the input has the focus
        await pilot.press("ctrl+b")
        await pilot.pause()
        screen.sidebar.options.highlighted = screen.sidebar.options.get_option_index(long_id)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.status.session == long_title
        assert not screen.sidebar.display and app.focused is prompt(app)
        # Escape in the sidebar goes back to the input
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert app.focused is screen.sidebar.options
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is prompt(app) and not screen.sidebar.display


async def test_wide_terminals_show_both_panels(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=(132, 36)) as pilot:
        screen = chat(app)
        assert screen.sidebar.display
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.sidebar.display and screen.insight.display
        await pilot.resize_terminal(80, 24)  # narrower: the sidebar steps aside
        await pilot.pause()
        assert not screen.sidebar.display and screen.insight.display
        assert app.focused is prompt(app)


async def test_themes_from_the_command_palette(agent: FakeAgent) -> None:
    from textual.command import CommandPalette

    agent.enqueue("```python\nx = 1\n```")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "code")
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"theme")
        await wait_for(pilot, lambda: "theme" in " ".join(screen_lines(app)).lower())
        await pilot.press("escape")
        await pilot.pause()
        backgrounds = set()
        for theme in ("nord", "gruvbox", "textual-light", "monokai"):
            app.theme = theme
            await pilot.pause()
            backgrounds.add(str(chat(app).status.styles.background))
            assert any("x = 1" in row for row in screen_lines(app))
        assert len(backgrounds) == 4, "each theme restyles the app"
        assert app.theme == "monokai"


async def test_model_command_shows_the_model_and_the_config(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/model")
        assert isinstance(app.screen, ModelScreen)
        shown = "\n".join(screen_lines(app))
        for expected in ("fake-model", "backend", "fake", "temperature", "max_new_tokens", "persona", "memory"):
            assert expected in shown, (expected, shown)
        await pilot.press("escape")
        assert not isinstance(app.screen, ModelScreen)
        assert agent.calls == []


async def test_after_a_rename_the_renamed_session_stays_highlighted(agent: FakeAgent) -> None:
    first = agent.chat("first").session_id
    agent.chat("second")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "third")
        await pilot.press("ctrl+b")
        options = chat(app).sidebar.options
        options.highlighted = options.get_option_index(first)
        await pilot.press("r")
        await pilot.pause()
        app.screen.query_one(Input).value = "First, renamed"
        await pilot.press("enter")
        await pilot.pause()
        assert options.highlighted == options.get_option_index(first)
        assert app.focused is options
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm) and "First, renamed" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("n")
