"""The app on the real :class:`agent.Agent` (fake backend, no memory, no classifiers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import Agent, load_config
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
        assert any("the message is 300 characters; the limit is 200" in n for n in notes(app)), notes(app)
        assert len(real_agent.history(first)) == before

        # export
        target = tmp_path / "export.md"
        await send(pilot, f"/export {target}")
        assert "print(1)" in target.read_text(encoding="utf-8")


def _config(tmp_path: Path, **extra):  # type: ignore[no-untyped-def]
    overrides = {"model": {"backend": "fake"}, "memory": {"enabled": False}, "understanding": {"enabled": False},
                 "data_dir": str(tmp_path / "data")}
    overrides.update(extra)
    return load_config(environ={}, overrides=overrides)


def _sidebar_titles(app: ChatApp) -> list[str]:
    from textual.widgets import OptionList

    options = chat(app).sidebar.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt).strip("● ").strip() for i in range(options.option_count)]


async def test_renamed_and_deleted_sessions_stay_so_after_a_restart(tmp_path: Path) -> None:
    from textual.widgets import Input

    from tui.screens import AskText, Confirm

    agent = Agent(_config(tmp_path))
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "keep me")
        kept = chat(app).session_id
        await send(pilot, "/new")
        await send(pilot, "delete me")
        doomed = chat(app).session_id
        await send(pilot, "/new Third")
        third = chat(app).session_id
        await pilot.press("ctrl+b")
        sidebar = chat(app).sidebar
        # rename the first session with the sidebar's r
        sidebar.options.highlighted = sidebar.options.get_option_index(kept)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, AskText)
        app.screen.query_one(Input).value = "Kept and renamed"
        await pilot.press("enter")
        await pilot.pause()
        # delete the second one with d, y
        sidebar.options.focus()
        sidebar.options.highlighted = sidebar.options.get_option_index(doomed)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot)
        assert chat(app).session_id == third, "deleting another session keeps the open one"
    assert agent.store is not None
    agent.close()

    # a new process: a new agent on the same data dir, a new app
    again = Agent(_config(tmp_path))
    app = ChatApp(again)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert sorted(_sidebar_titles(app)) == ["Kept and renamed", "Third"]
        sidebar = chat(app).sidebar
        sidebar.options.focus()
        sidebar.options.highlighted = sidebar.options.get_option_index(kept)
        await pilot.press("enter")
        await settle(pilot)
        assert chat(app).session_id == kept
        assert [v.text for v in messages(app)] == ["keep me", "You said: keep me"]
        assert chat(app).status.session == "Kept and renamed"
    again.close()


async def test_forgetting_a_recalled_memory_from_the_insight_panel(tmp_path: Path) -> None:
    from tui.widgets import InsightPanel
    from tui.widgets.insight import MemoryRow

    # the fake embedder is not semantic: the recall gate (a cosine threshold) is off here
    agent = Agent(_config(tmp_path, memory={"enabled": True, "embedder": "fake", "inject_min_similarity": -1.0}))
    assert agent.memory is not None
    agent.memory.add("The user's name is Ada and she likes tea", user_id="local", kind="fact")
    agent.memory.add("The user's cat is called Tea Cosy", user_id="local", kind="fact")
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Does Ada like tea?")
        await pilot.press("ctrl+t")
        await pilot.pause()
        panel = chat(app).query_one(InsightPanel)
        rows = list(panel.query(MemoryRow))
        recalled = {row.memory_id: str(row.query_one(".memory-text").render()) for row in rows}
        ada = next(i for i, text in recalled.items() if "likes tea" in text)
        assert ada in {m.id for m in agent.remember("local")}
        forget = next(row for row in rows if row.memory_id == ada).query_one("Button")
        await pilot.click(forget)
        await pilot.pause()
        assert ada not in {m.id for m in agent.remember("local")}, "the memory is gone from the store"
        assert ada not in [row.memory_id for row in panel.query(MemoryRow)]
        assert any("Forgot 1 memory" in n for n in notes(app))
        # and it is not recalled again
        await send(pilot, "Does Ada like tea?")
        assert ada not in [m["id"] for m in messages(app)[-1].meta["memories"]]
    agent.close()


async def test_attach_into_the_knowledge_base_or_into_the_message(tmp_path: Path) -> None:
    doc = tmp_path / "returns.md"
    doc.write_text("# Returns\n\nItems can be returned within 30 days for a full refund.\n", encoding="utf-8")
    agent = Agent(_config(tmp_path, memory={"enabled": True, "embedder": "fake", "inject_min_similarity": -1.0}))
    assert agent.memory is not None
    app = ChatApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        # into the knowledge base: stored as passages of the file, recalled by the next turns
        chat(app).attach("kb", str(doc))
        await settle(pilot)
        assert any("to the knowledge base" in n and "returns.md" in n for n in notes(app)), notes(app)
        await send(pilot, "How many days do I have to return items for a refund?")
        recalled = messages(app)[-1].meta["memories"]
        assert any("30 days" in m["text"] for m in recalled), recalled
        # into the message: the file's text goes to the agent as part of the message
        await type_text(pilot, "Summarize: ")
        chat(app).attach("message", str(doc))
        await pilot.pause()
        assert "30 days" in prompt(app).text
        prompt(app).action_submit()
        await settle(pilot)
        sent = agent.backend.history[-1].messages[-1]["content"]  # type: ignore[attr-defined]
        assert sent.endswith("Summarize: returns.md:\n```md\n# Returns\n\nItems can be returned within 30 days"
                             " for a full refund.\n```"), sent
    agent.close()


async def test_model_command_on_the_real_agent(real_agent: Agent, tmp_path: Path) -> None:
    from tui.screens import ModelScreen
    from tui.screens.model import model_facts

    app = ChatApp(real_agent)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/model")
        assert isinstance(app.screen, ModelScreen)
        facts = dict(model_facts(real_agent))
        assert facts["model"] == real_agent.model_name and facts["backend"] == "fake"
        assert facts["memory"] == "off" and facts["max input"] == "200 characters"
        assert str(tmp_path / "data") in facts["data dir"]
        shown = "\n".join(screen_lines(app))
        assert real_agent.model_name in shown and "max_new_tokens" in shown
        assert real_agent.sessions() == [], "/model is not sent to the agent"


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("example", "name"), [("support_bot", "Northwind Support"), ("tutor", "Ada")])
async def test_llmos_chat_config_runs_the_examples(example: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``llmos chat --config examples/.../agent.yaml`` builds (tui.build_app), on the fake
    model and embedder: it loads, names the agent, answers, and says which skills are missing."""
    import tui
    from tui.screens import ChatScreen

    monkeypatch.setenv("LLMOS_MODEL__BACKEND", "fake")
    monkeypatch.setenv("LLMOS_MEMORY__EMBEDDER", "fake")
    app = tui.build_app(str(EXAMPLES / example / "agent.yaml"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen), timeout=120)
        assert chat(app).status.model.startswith(f"{name} · ")
        await send(pilot, "Hello! Can you help me?")
        reply = messages(app)[-1]
        assert reply.role == "assistant" and reply.text and reply.meta["finish_reason"] == "stop"
        # the examples' own skills are plugins (pip install -e examples/...): the UI says so
        missing = {"support_bot": "shop_orders", "tutor": "exercise"}[example]
        assert any(missing in n and "not installed" in n for n in notes(app)), notes(app)
        assert app.agent is not None and app.agent.config.name == name


async def test_a_restart_reopens_the_session_the_user_was_in(tmp_path: Path) -> None:
    """``llmos chat`` (tui.build_app) twice on one data dir: the second run opens the session
    that was open when the first one quit, even when it is not the newest one."""
    import tui
    from tui.screens import ChatScreen

    config = tmp_path / "chat.yaml"
    config.write_text(f"model:\n  backend: fake\nmemory:\n  enabled: false\nunderstanding:\n  enabled: false\n"
                      f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")

    async def run(steps):  # type: ignore[no-untyped-def]
        app = tui.build_app(str(config))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen), timeout=60)
            await settle(pilot)
            result = await steps(app, pilot)
            await app.action_quit()
        return result

    async def first(app, pilot):  # type: ignore[no-untyped-def]
        await send(pilot, "the older session")
        older = chat(app).session_id
        await send(pilot, "/new")
        await send(pilot, "the newer session")
        await chat(app).open_session(older)  # back to the older one, then quit
        await settle(pilot)
        return older

    async def second(app, pilot):  # type: ignore[no-untyped-def]
        return chat(app).session_id, [v.text for v in messages(app)], chat(app).status.session

    older = await run(first)
    assert await run(second) == (older, ["the older session", "You said: the older session"], "the older session")

    async def new_chat(app, pilot):  # type: ignore[no-untyped-def]
        await send(pilot, "/new")
        await send(pilot, "latest")
        return chat(app).session_id

    latest = await run(new_chat)
    assert (await run(second))[0] == latest
