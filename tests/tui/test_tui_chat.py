"""Pilot tests of a turn: send, stream, stop, errors (with the draft restored), loading."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import ProgressBar

from agent.errors import BackendError, InputError, ModelError
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
from tui.screens import ChatScreen, LoadingScreen

pytestmark = pytest.mark.anyio


async def test_send_shows_the_message_and_the_streamed_reply(agent: FakeAgent) -> None:
    agent.enqueue(["Hello", " there", ", human", "."], skill="chat")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi bot")
        views = messages(app)
        assert [v.role for v in views] == ["user", "assistant"]
        assert views[0].text == "hi bot"
        assert views[1].text == "Hello there, human."
        assert views[1].body.source == "Hello there, human."
        assert views[1].meta["finish_reason"] == "stop"
        assert prompt(app).text == ""
        assert agent.calls == [("hi bot", None)]
        screen = chat(app)
        assert screen.session_id == agent.sessions()[0].id
        assert not screen.generating
        assert "tok/s" in screen.status.state
        # the next turn goes to the same session
        await send(pilot, "again")
        assert agent.calls[-1] == ("again", screen.session_id)
        assert len(messages(app)) == 4


async def test_reply_streams_piece_by_piece(agent: FakeAgent) -> None:
    agent.hold()
    agent.enqueue([f"word{i} " for i in range(30)])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "stream please")
        await pilot.press("enter")
        reply = messages(app)[-1]
        assert chat(app).generating and reply.text == ""
        agent.allow(3)
        await wait_for(pilot, lambda: reply.text == "word0 word1 word2 ")
        await wait_for(pilot, lambda: reply.body.source == "word0 word1 word2 ")
        assert chat(app).generating, "the reply is shown while it is being generated"
        partial = reply.text
        agent.release()
        await settle(pilot)
        assert reply.text == "".join(f"word{i} " for i in range(30))
        assert reply.body.source.startswith(partial)


async def test_escape_stops_generation_and_keeps_the_partial_reply(agent: FakeAgent) -> None:
    agent.hold()
    agent.enqueue([f"piece{i} " for i in range(200)])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "talk a lot")
        await pilot.press("enter")
        reply = messages(app)[-1]
        agent.allow(5)
        await wait_for(pilot, lambda: reply.text.count("piece") == 5)
        await pilot.press("escape")
        await settle(pilot)
        agent.release()
        screen = chat(app)
        assert not screen.generating
        assert reply.meta["finish_reason"] == "cancelled"
        assert reply.text == "".join(f"piece{i} " for i in range(5))
        assert "stopped" in str(reply.query_one(".role").render())
        assert screen.status.state.startswith("stopped")
        # the app is usable again afterwards
        await send(pilot, "next")
        assert messages(app)[-1].text == "You said: next"


async def test_stop_before_the_first_piece(agent: FakeAgent) -> None:
    agent.hold()
    agent.enqueue(["never", " shown"])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await pilot.press("escape")
        await settle(pilot)
        reply = messages(app)[-1]
        assert reply.text == "" and reply.meta["finish_reason"] == "cancelled"
        assert "stopped before any text" in reply.body.source


async def test_rejected_input_restores_the_draft_and_notifies(agent: FakeAgent) -> None:
    agent.reject["too long"] = InputError("the message is too long (9 > 5 characters): shorten it")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "too long")
        assert prompt(app).text == "too long"
        assert messages(app) == []
        assert any("too long (9 > 5" in note for note in notes(app))
        assert not chat(app).generating
        assert chat(app).status.state == "error"


async def test_error_mid_stream_restores_the_draft(agent: FakeAgent) -> None:
    agent.enqueue(["partial", " answer", " never", " finished"], fail_after=2,
                  error=BackendError("the model server went away: start it again"))
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "my precious\ndraft")
        await pilot.press("enter")
        await settle(pilot)
        assert prompt(app).text == "my precious\ndraft"
        assert messages(app) == []
        assert any("server went away" in note for note in notes(app))
        # the draft can be sent again as it is
        await pilot.press("enter")
        await settle(pilot)
        assert messages(app)[-1].text == "You said: my precious\ndraft"


async def test_a_second_message_while_generating_is_kept_as_draft(agent: FakeAgent) -> None:
    agent.hold()
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "first")
        await pilot.press("enter")
        await type_text(pilot, "second")
        await pilot.press("enter")
        assert prompt(app).text == "second"
        assert any("still coming" in note for note in notes(app))
        agent.release()
        await settle(pilot)
        assert len(messages(app)) == 2


async def test_auto_scroll_follows_the_reply_until_the_user_scrolls_up(agent: FakeAgent) -> None:
    agent.hold()
    agent.enqueue([f"line {i}\n\n" for i in range(60)])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "long please")
        await pilot.press("enter")
        conversation = chat(app).conversation
        reply = messages(app)[-1]
        agent.allow(30)
        await wait_for(pilot, lambda: reply.text.count("line") == 30)
        await pilot.pause(0.2)
        assert conversation.scroll_y > 0 and conversation.scroll_y >= conversation.max_scroll_y - 2
        conversation.scroll_home(animate=False, immediate=True)  # the user scrolls up
        await pilot.pause()
        agent.release()
        await settle(pilot)
        assert conversation.scroll_y < 5, "new text must not drag the user back down"
        assert reply.text.count("line") == 60


async def test_loading_screen_shows_progress_then_the_chat() -> None:
    release = threading.Event()
    seen = threading.Event()

    def factory(progress):  # type: ignore[no-untyped-def]
        progress(0.0, "Converting the embedded model (first start only)…")
        progress(0.5, "Converting the embedded model (first start only)…")
        seen.set()
        release.wait(5)
        progress(1.0, "ready")
        return FakeAgent()

    app = ChatApp(agent_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, seen.is_set)
        await pilot.pause(0.1)
        assert isinstance(app.screen, LoadingScreen)
        assert app.screen.query_one(ProgressBar).progress == 0.5
        release.set()
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        await send(pilot, "ping")
        assert messages(app)[-1].text == "You said: ping"


async def test_loading_failure_is_shown_and_quits_with_an_error_code() -> None:
    def factory(progress):  # type: ignore[no-untyped-def]
        raise ModelError("model 'nope' not found: run `llmos models` to list them")

    app = ChatApp(agent_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("not found" in n for n in notes(app)))
        assert isinstance(app.screen, LoadingScreen)
        assert "llmos models" in str(app.screen.query_one("#loading-message").render())
        await pilot.press("q")
    assert app.return_code == 1


async def test_quit_stops_generation_and_closes_the_agent(agent: FakeAgent) -> None:
    agent.hold()
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "never answered")
        await pilot.press("enter")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert agent.closed
    assert app.return_code == 0


async def test_replies_are_markdown_with_highlighted_code_streamed_through_get_stream(agent: FakeAgent) -> None:
    from textual.widgets._markdown import MarkdownFence
    from textual.widgets.markdown import MarkdownStream

    agent.hold()
    agent.enqueue(["Some **bold** text:", "\n\n```python\n", "def f(x):\n", "    return x + 1\n", "```\n"])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "code")
        await pilot.press("enter")
        reply = messages(app)[-1]
        agent.allow(1)
        await wait_for(pilot, lambda: reply.text == "Some **bold** text:")
        assert isinstance(reply._stream, MarkdownStream), "pieces go through Markdown.get_stream"
        body = reply.body
        agent.release()
        await settle(pilot)
        assert reply.body is body, "the same widget grows: no re-mount, no flicker"
        fence = reply.query_one(MarkdownFence)
        assert fence.code == "def f(x):\n    return x + 1" and fence.lexer == "python"
        styled = {fence._highlighted_code.plain[span.start:span.end]: str(span.style)
                  for span in fence._highlighted_code.spans}
        assert "def" in styled and "return" in styled, styled  # keywords are highlighted
        rows = [row.strip("▌ ").rstrip() for row in screen_lines(app)]
        assert "def f(x):" in rows and "return x + 1" in rows
        assert "Some bold text:" in rows, "Markdown is rendered, not shown as source"


async def test_auto_scroll_lets_go_on_wheel_or_page_up_and_comes_back_at_the_end(agent: FakeAgent) -> None:
    from textual import events

    agent.hold()
    agent.enqueue([f"line {i}\n\n" for i in range(90)])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "long please")
        await pilot.press("enter")
        conversation = chat(app).conversation
        reply = messages(app)[-1]
        agent.allow(20)
        await wait_for(pilot, lambda: reply.text.count("line") == 20)
        await pilot.pause(0.1)
        assert conversation.scroll_y >= conversation.max_scroll_y - 1 > 0, "following the reply"
        # the mouse wheel up, over the conversation
        for _ in range(3):
            conversation.post_message(events.MouseScrollUp(conversation, 5, 5, 0, -1, 0, False, False, False))
        await pilot.pause(0.1)
        held = conversation.scroll_y
        assert held < conversation.max_scroll_y - 2
        agent.allow(20)
        await wait_for(pilot, lambda: reply.text.count("line") == 40)
        await pilot.pause(0.1)
        assert conversation.scroll_y == held, "new text must not drag the user back down"
        # Page Up in the input scrolls the conversation too (keyboard only users)
        assert app.focused is prompt(app)
        await pilot.press("pageup")
        await pilot.pause(0.1)
        assert conversation.scroll_y < held
        assert app.focused is prompt(app)
        # back to the end (Page Down to the bottom): it follows the reply again
        for _ in range(40):
            if conversation.scroll_y >= conversation.max_scroll_y:
                break
            await pilot.press("pagedown")
        await pilot.pause(0.1)
        # a wheel turn down at the very end does not let go again
        for _ in range(2):
            conversation.post_message(events.MouseScrollDown(conversation, 5, 5, 0, 1, 0, False, False, False))
        await pilot.pause(0.1)
        agent.release()
        await settle(pilot)
        assert reply.text.count("line") == 90
        assert conversation.scroll_y >= conversation.max_scroll_y - 1, "anchored again at the end"


async def test_warnings_while_the_agent_loads_are_shown() -> None:
    import logging

    def factory(progress):  # type: ignore[no-untyped-def]
        logging.getLogger("skills.registry").warning("skills.enabled names %r, which is not installed", "[b]x[/b]")
        logging.getLogger("agent").info("an info line is not shown")
        return FakeAgent()

    app = ChatApp(agent_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.pause()
        assert any("skills.enabled names '[b]x[/b]', which is not installed" in n for n in notes(app)), notes(app)
        assert not any("info line" in n for n in notes(app))


async def test_opening_a_panel_keeps_the_end_of_the_conversation_in_view(agent: FakeAgent) -> None:
    agent.enqueue(" ".join(f"word{i}" for i in range(400)) + " THE-END")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "a long reply please")
        conversation = chat(app).conversation
        await pilot.pause(0.1)
        assert any("THE-END" in row for row in screen_lines(app))
        for key in ("ctrl+t", "ctrl+b", "ctrl+b", "ctrl+t"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert conversation.scroll_y >= conversation.max_scroll_y - 1, key
            assert any("THE-END" in row for row in screen_lines(app)), key
        # one Page Down too many at the end keeps following (Textual would let go of the anchor)
        await pilot.press("ctrl+t", "pageup", "pagedown", "pagedown", "pagedown")
        await pilot.pause(0.1)
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)
        assert any("THE-END" in row for row in screen_lines(app))
        # scrolled up, a panel does not pull the view down
        await pilot.press("ctrl+t", "pageup")
        await pilot.pause(0.1)
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)
        assert not any("THE-END" in row for row in screen_lines(app))


async def test_a_long_loading_step_shows_that_it_is_still_working(monkeypatch: pytest.MonkeyPatch) -> None:
    # loading the embedded model sits at one step for ~5 s: the screen counts the seconds
    monkeypatch.setattr(LoadingScreen, "STILL_AFTER", 0.2)
    release = threading.Event()

    def factory(progress):  # type: ignore[no-untyped-def]
        progress(0.95, "loading smollm2-135m")
        release.wait(10)
        return FakeAgent()

    app = ChatApp(agent_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        message = lambda: str(app.screen.query_one("#loading-message").render())  # noqa: E731
        await wait_for(pilot, lambda: isinstance(app.screen, LoadingScreen) and "loading smollm2" in message())
        await wait_for(pilot, lambda: "loading smollm2-135m… 1 s" in message(), timeout=5)
        release.set()
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
