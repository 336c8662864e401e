"""What the conversation tells the user about a turn: a handoff to a person, a long skill's
progress where its reply will appear, and tokens/s only for replies the model decoded."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from agent import Agent, load_config
from agent.backends import FakeBackend
from tests.helpers.tui import SIZE, chat, messages, prompt, screen_lines, send, settle, type_text, wait_for
from tests.helpers.tui_fakes import FakeAgent
from tui.app import ChatApp

pytestmark = pytest.mark.anyio

HUMAN = ("human_request", 0.97)


def _notes(app: ChatApp) -> list[str]:
    return [str(note.render()) for note in chat(app).conversation.query(".note").results(Static)]


async def test_a_handoff_is_said_in_the_conversation(agent: FakeAgent) -> None:
    agent.enqueue("I am sorry. A colleague will take over.", intent=HUMAN, handoff=True)
    agent.enqueue("Sure, here it is.")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "This is useless, I want to speak to a human NOW")
        notes = _notes(app)
        assert len(notes) == 1 and notes[0].startswith("Handoff: You asked for a person."), notes
        assert "Nobody was notified" in notes[0] and "server.webhook.url" in notes[0], notes
        # the note sits under the reply it belongs to, on screen
        children = list(chat(app).conversation.query_one("#messages").children)
        reply = messages(app)[1]
        assert children[children.index(reply) + 1].has_class("note")
        assert any("Handoff: You asked for a person." in row for row in screen_lines(app))
        await send(pilot, "ok, then send me the invoice")
        assert len(_notes(app)) == 1, "only the turn that handed off gets the note"
        # and it is still there when the session is opened again (from the stored reply)
        session = chat(app).session_id
        await chat(app).open_session(None)
        await chat(app).open_session(session)
        await settle(pilot)
        assert len(_notes(app)) == 1


async def test_the_handoff_note_says_who_was_notified(agent: FakeAgent) -> None:
    class Helpdesk:
        url = "https://helpdesk.example.com/hooks/llmos"

        def __init__(self) -> None:
            self.replies: list[object] = []

        def __call__(self, reply: object) -> None:
            self.replies.append(reply)

    helpdesk = Helpdesk()
    agent.on_handoff.append(helpdesk)
    agent.enqueue("Someone will be with you shortly.", intent=("complaint", 0.8), frustration=0.9, handoff=True)
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "third time this week the order is late")
        [note] = _notes(app)
        assert note.startswith("Handoff: This conversation needs a person.")
        assert "helpdesk at helpdesk.example.com has been sent this conversation" in note
        assert len(helpdesk.replies) == 1


async def test_a_long_skill_shows_its_progress_where_the_reply_will_appear(agent: FakeAgent) -> None:
    agent.hold()
    agent.enqueue("A short summary.", skill="summarize", progress=[(0.0, "1 part"), (0.5, "1/2 parts")])
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "/summarize " + "words " * 150)
        prompt(app).action_submit()
        await wait_for(pilot, lambda: len(messages(app)) == 2)
        reply = messages(app)[1]

        def role_line() -> str:
            return str(reply.query_one(".role", Static).render())

        await wait_for(pilot, lambda: "1/2 parts" in role_line())
        assert role_line().startswith("llmos · ▰▰▰▰▱▱▱▱ 50% · 1/2 parts")
        await wait_for(pilot, lambda: role_line().endswith(" s"), timeout=3)  # the seconds waited
        rows = [row.strip(" ▌") for row in screen_lines(app)]
        assert any(row.startswith("llmos · ▰▰▰▰▱▱▱▱ 50% · 1/2 parts") for row in rows), "on the reply's line"
        agent.release()
        await settle(pilot)
        assert reply.text == "A short summary." and role_line() == "llmos · summarize · 0.3s"


def _agent(tmp_path: Path, backend: FakeBackend) -> Agent:
    config = load_config(environ={}, overrides={
        "model": {"backend": "fake"}, "memory": {"enabled": False}, "understanding": {"enabled": False},
        "data_dir": str(tmp_path / "data")})
    return Agent(config, backend=backend)


async def test_code_replies_report_the_code_being_written(tmp_path: Path) -> None:
    code = "```python\ndef reverse(s):\n    return s[::-1]\n```"
    backend = FakeBackend([code], delay=0.15)
    agent = _agent(tmp_path, backend)
    assert "code" in agent.skills
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "/code a python function that reverses a string")
        prompt(app).action_submit()
        await wait_for(pilot, lambda: len(messages(app)) == 2)
        reply = messages(app)[1]
        seen: set[str] = set()

        def lines_written() -> bool:
            seen.add(str(reply.query_one(".role", Static).render()))
            return any("writing the code: 2 lines" in text for text in seen)

        await wait_for(pilot, lines_written, timeout=10)
        assert reply.text == "", "the code is shown once it is checked"
        await settle(pilot)
        assert reply.text.startswith("```python\ndef reverse(s):") and reply.progress == ""
        assert reply.meta["skill"] == "code"
        assert str(reply.query_one(".role", Static).render()).startswith("llmos · code · ")
    agent.close()


async def test_tokens_per_second_only_for_replies_the_model_decoded(tmp_path: Path) -> None:
    from tui.widgets import InsightPanel

    backend = FakeBackend(delay=0.02)
    agent = _agent(tmp_path, backend)
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        # a skill's ready-made answer: nothing decoded, so no rate
        await send(pilot, "/summarize That is a short text.")
        reply = messages(app)[-1]
        assert reply.meta["skill"] == "summarize" and "already short" in reply.text
        assert backend.history == [], "the model was not asked"
        assert "tok/s" not in chat(app).status.state, chat(app).status.state
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert "speed      —" in str(chat(app).query_one(InsightPanel).query_one("#insight-timings").render())
        # a chat reply streamed from the model has one
        await send(pilot, "tell me about the sea")
        assert messages(app)[-1].meta["skill"] is None
        assert "tok/s" in chat(app).status.state, chat(app).status.state
    agent.close()


def test_progress_text() -> None:
    from tui.widgets.message import progress_text

    assert progress_text(0.0, "thinking…", 0.4) == "thinking…"
    assert progress_text(0.25, "1/4 parts", 3.2) == "▰▰▱▱▱▱▱▱ 25% · 1/4 parts · 3 s"
    assert progress_text(0.5, "\x1b[2J", 0) == "▰▰▰▰▱▱▱▱ 50% · ␛[2J"
