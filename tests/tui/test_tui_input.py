"""Pilot tests of the input: keys, history, completion, pastes and attachments."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual import events

from agent.errors import InputError
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
from tui.screens import AttachFile, ModelScreen
from tui.widgets import CommandHints
from tui.widgets.prompt import FOLD_CHARS

pytestmark = pytest.mark.anyio


async def test_enter_sends_and_ctrl_j_or_shift_enter_add_lines(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o", "n", "e", "ctrl+j", "t", "w", "o", "shift+enter", "x")
        assert prompt(app).text == "one\ntwo\nx"
        await pilot.press("enter")
        await settle(pilot)
        assert agent.calls == [("one\ntwo\nx", None)]
        assert messages(app)[0].text == "one\ntwo\nx"
        rows = [row.strip() for row in screen_lines(app)]
        assert rows[rows.index("one") + 1] == "two", "the message keeps its newlines on screen"
        assert prompt(app).text == ""
        await pilot.press("enter")  # an empty input sends nothing
        await settle(pilot)
        assert len(agent.calls) == 1


async def test_up_and_down_walk_the_history(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "first")
        await send(pilot, "second\nline")
        await type_text(pilot, "draft")
        box = prompt(app)
        box.move_cursor((0, 0))
        await pilot.press("up")
        assert box.text == "second\nline"
        await pilot.press("up")  # the cursor is on the first line: older entry
        assert box.text == "first"
        await pilot.press("up")
        assert box.text == "first"
        await pilot.press("down")
        assert box.text == "second\nline"
        await pilot.press("down")  # on "second": the cursor moves to "line" first
        await pilot.press("down")
        assert box.text == "draft"


async def test_slash_completion_with_tab_and_hints(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("/", "m")
        hints = chat(app).query_one(CommandHints)
        assert hints.display
        shown = str(hints.render())
        assert "/memory" in shown and "/model" in shown and "/export" not in shown
        assert prompt(app).suggestion == "emory"
        await pilot.press("o", "tab")
        assert prompt(app).text == "/model "
        assert not hints.display
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ModelScreen) and agent.calls == []


async def test_paste_is_neutralized_and_a_huge_paste_is_folded(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        box = prompt(app)
        box.focus()
        box.post_message(events.Paste("evil\x1b]0;title\x07 [b]x[/b]"))
        await pilot.pause()
        assert box.text == "evil␛]0;title␇ [b]x[/b]"
        box.clear()
        huge = ("0123456789abcdef" * 64 + "\n") * 1000  # ~1 MB of 1 KB lines
        huge_one_line = "y" * 1_000_000  # 1 MB on one line
        timings = {}
        for name, text in (("1 MB of lines", huge), ("1 MB on one line", huge_one_line)):
            before = len(box.text)
            started = time.perf_counter()
            box.post_message(events.Paste(text))
            await wait_for(pilot, lambda before=before: len(box.text) > before, timeout=30)
            timings[name] = time.perf_counter() - started
        # the UI still answers keys at once after the pastes
        started = time.perf_counter()
        await pilot.press("!")
        timings["a key after"] = time.perf_counter() - started
        print("paste timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
        assert box.text == "[pasted text #1: 1,025,000 chars][pasted text #2: 1,000,000 chars]!"
        assert max(timings.values()) < 5, f"a 1 MB paste must not freeze the UI: {timings}"
        assert box.expand_pastes(box.text) == huge + huge_one_line + "!"
        # an over-long message is rejected by the agent like any other input error: the draft stays
        agent.reject[huge + huge_one_line + "!"] = InputError(
            "the message is too long: attach the file to the knowledge base instead")
        box.action_submit()
        await settle(pilot)
        assert box.text == "[pasted text #1: 1,025,000 chars][pasted text #2: 1,000,000 chars]!"
        assert messages(app) == []
        assert any("too long" in n for n in notes(app))


async def test_typing_on_a_focused_message_goes_to_the_input(agent: FakeAgent) -> None:
    agent.enqueue("Some reply")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        reply = messages(app)[-1]
        reply.focus()
        await pilot.pause()
        await pilot.press("b")  # a message's own key: copy a code block (there is none)
        assert prompt(app).text == "" and app.focused is reply
        await pilot.press("slash", "m", "o")
        assert app.focused is prompt(app)
        assert prompt(app).text == "/mo"


def test_small_pastes_are_not_folded() -> None:
    assert FOLD_CHARS >= 8_000


async def test_attach_a_file_into_the_message(agent: FakeAgent, tmp_path: Path) -> None:
    source = tmp_path / "hello.py"
    source.write_text("print('hi')\x1b[2J\n", encoding="utf-8")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Explain this: ")
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, AttachFile)
        app.screen.query_one("#path").value = str(source)  # type: ignore[attr-defined]
        await pilot.click("#message")
        await pilot.pause()
        assert prompt(app).text == "Explain this: hello.py:\n```py\nprint('hi')␛[2J\n```\n"
        (tmp_path / "blob.bin").write_bytes(b"\x00\x01binary")
        chat(app).attach("message", str(tmp_path / "blob.bin"))
        await pilot.pause()
        assert any("binary" in n for n in notes(app))
        chat(app).attach("message", str(tmp_path / "missing.txt"))
        await pilot.pause()
        assert any("No such file" in n for n in notes(app))


async def test_attach_a_file_to_the_knowledge_base(agent: FakeAgent, tmp_path: Path) -> None:
    doc = tmp_path / "faq.md"
    doc.write_text("# FAQ\n\nOne.\n\nTwo.\n", encoding="utf-8")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, f"/attach {doc}")
        assert isinstance(app.screen, AttachFile)
        await pilot.click("#kb")
        await settle(pilot)
        assert agent.documents == [str(doc)]
        assert any("Added 3 passages from faq.md" in n for n in notes(app))
        agent.memory_enabled = False
        chat(app).attach("kb", str(doc))
        await settle(pilot)
        assert any("memory is disabled" in n for n in notes(app))


async def test_tab_in_the_attach_dialog_completes_the_path(agent: FakeAgent, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "returns-policy.md").write_text("# Returns\n", encoding="utf-8")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, AttachFile)
        field = app.screen.query_one("#path")
        assert "Right/Tab completes the path" in "\n".join(screen_lines(app))
        for key in str(tmp_path / "do"):
            await pilot.press(key if key.isalnum() else {"/": "slash", "-": "minus", "_": "underscore",
                                                         ".": "full_stop"}[key])
        await pilot.press("tab")  # at once, before the suggestion worker has shown anything
        assert field.value == str(folder) + "/" and field.has_focus  # type: ignore[attr-defined]
        await pilot.press("r", "tab")
        assert field.value == str(folder / "returns-policy.md") and field.has_focus  # type: ignore[attr-defined]
        await pilot.press("tab")  # nothing left to complete: on to the buttons
        assert not field.has_focus and app.focused is not None and app.focused.id == "kb"
        await pilot.press("enter")
        await settle(pilot)
        assert agent.documents == [str(folder / "returns-policy.md")]


def test_a_bracketed_paste_with_escape_bytes_keeps_its_order() -> None:
    """Textual's own parser typed the bytes after an ESC as keys, before the paste's start."""
    from textual._xterm_parser import XTermParser

    from tui.paste import PasteParser

    data = "a\x1b[200~AAA BBB \x1b[31mCCC\x1b[0m DDD\x1b[201~b\x1b[A"

    def tokens(parser: XTermParser, chunks: list[str]) -> list[tuple[str, str]]:
        found = [token for chunk in chunks for token in parser.feed(chunk)]
        return [(type(t).__name__, getattr(t, "text", None) or getattr(t, "key", "")) for t in found]

    expected = [("Key", "a"), ("Paste", "AAA BBB \x1b[31mCCC\x1b[0m DDD"), ("Key", "b"), ("Key", "up")]
    assert tokens(XTermParser(), [data]) != expected  # the bug this parser is here for
    assert tokens(PasteParser(), [data]) == expected
    assert tokens(PasteParser(), list(data)) == expected, "split anywhere, as reads can be"
    assert tokens(PasteParser(), ["\x1b[200~x\x00y\x1b[201~"]) == [("Paste", "xy")]


async def test_a_pasted_escape_sequence_lands_in_order_and_inert(agent: FakeAgent) -> None:
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "see: ")
        app.post_message(events.Paste("AAA BBB \x1b[31mCCC\x1b[0m DDD"))
        await pilot.pause()
        assert prompt(app).text == "see: AAA BBB ␛[31mCCC␛[0m DDD"
