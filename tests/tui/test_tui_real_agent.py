"""The app on the real :class:`agent.Agent` (fake backend, no memory, no classifiers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SIZE, chat, messages, notes, prompt, send, settle, type_text, wait_for

from agent import Agent, load_config
from tui.app import ChatApp

pytestmark = pytest.mark.anyio


@pytest.fixture
def real_agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = load_config(environ={}, overrides={
        "model": {"backend": "fake"}, "memory": {"enabled": False}, "understanding": {"enabled": False},
        "data_dir": str(tmp_path / "data"), "max_input_chars": 200,
    })
    agent = Agent(config)
    yield agent
    agent.close()


async def test_chat_sessions_stop_and_errors_on_the_real_agent(real_agent: Agent, tmp_path: Path) -> None:
    real_agent.backend.enqueue("Hi! Here is code:\n\n```python\nprint(1)\n```")  # type: ignore[attr-defined]
    app = ChatApp(real_agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello agent")
        user, reply = messages(app)
        assert reply.text == "Hi! Here is code:\n\n```python\nprint(1)\n```"
        assert reply.meta["finish_reason"] == "stop" and reply.meta["timings_ms"]["total"] > 0
        first = chat(app).session_id
        assert [s.id for s in real_agent.sessions()] == [first]
        assert chat(app).status.session == "hello agent"

        # a second session, then back to the first one (history from the store)
        await send(pilot, "/new")
        await send(pilot, "second session")
        assert messages(app)[-1].text == "You said: second session"
        await chat(app).open_session(first)
        await settle(pilot)
        assert [v.text for v in messages(app)] == ["hello agent", "Hi! Here is code:\n\n```python\nprint(1)\n```"]

        # stop mid-reply: the stored reply is marked cancelled
        real_agent.backend.delay = 0.05  # type: ignore[attr-defined]
        real_agent.backend.enqueue(" ".join(f"w{i}" for i in range(200)))  # type: ignore[attr-defined]
        await type_text(pilot, "long reply please")
        prompt(app).action_submit()
        await wait_for(pilot, lambda: len(messages(app)) == 4 and messages(app)[-1].text.startswith("w0"), timeout=10)
        chat(app).action_stop()
        await settle(pilot)
        assert messages(app)[-1].meta["finish_reason"] == "cancelled"
        assert len(messages(app)[-1].text) < len(" ".join(f"w{i}" for i in range(200)))
        stored = real_agent.history(first)[-1]
        assert stored.role == "assistant" and stored.meta["finish_reason"] == "cancelled"
        real_agent.backend.delay = 0.0  # type: ignore[attr-defined]

        # rejected input (over max_input_chars): notification, draft restored, nothing stored
        before = len(real_agent.history(first))
        await send(pilot, "x" * 300)
        assert prompt(app).text == "x" * 300
        assert any("too long" in n.lower() or "300" in n for n in notes(app)), notes(app)
        assert len(real_agent.history(first)) == before

        # export
        target = tmp_path / "export.md"
        await send(pilot, f"/export {target}")
        assert "print(1)" in target.read_text(encoding="utf-8")
