"""The dialogue manager's tool loop: the model calls, the tools run, their results go back to
the model, and the turn keeps a record of every call (reply, store, llmos ask --json)."""

from __future__ import annotations

import json

import pytest

from agent.toolcalls import ToolCall


@pytest.fixture
def tool_agent(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend
    from tests.helpers.tools import order_status, weather

    made = []

    def make(replies, **config):
        backend = FakeBackend(replies)
        agent = Agent(fake_config(**config), backend=backend, skills={}, tools=[order_status, weather])
        made.append(agent)
        return agent, backend

    yield make
    for agent in made:
        agent.close()


def test_a_call_runs_and_the_model_answers_from_its_result(tool_agent):
    call = ToolCall(name="order_status", arguments={"order_id": 4417})
    agent, backend = tool_agent([call, "Your order 4417 has shipped."])
    reply = agent.chat("Where is my order 4417?")
    assert reply.text == "Your order 4417 has shipped." and reply.finish_reason == "stop"
    assert [t.name for t in backend.history[0].tools] == ["order_status", "weather"]
    second = backend.history[1].messages
    assert second[-2] == {"role": "assistant", "content": "", "tool_calls": [call.openai()]}
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == call.id
    assert json.loads(second[-1]["content"]) == {"order": 4417, "status": "shipped", "detail": "short"}
    [record] = reply.tool_calls
    assert (record.name, record.arguments, record.ok) == ("order_status", {"order_id": 4417}, True)
    assert record.ms >= 0 and "shipped" in record.result
    stored = agent.history(reply.session_id)[-1].meta["tool_calls"]
    assert stored[0]["name"] == "order_status" and stored[0]["arguments"] == {"order_id": 4417}


def test_parallel_calls_and_a_failing_call_reach_the_model_as_results(tool_agent):
    calls = [ToolCall(name="weather", arguments={"city": "Lyon"}),
             ToolCall(name="order_status", arguments={"order_id": -1})]
    agent, backend = tool_agent([calls, "Lyon is rainy; that order number looks wrong."])
    reply = agent.chat("Weather in Lyon, and order -1?")
    results = [m for m in backend.history[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == [c.id for c in calls]
    assert results[0]["content"] == "Lyon: 18 C, light rain"
    assert results[1]["content"].startswith("error: invalid arguments for order_status")
    assert [r.ok for r in reply.tool_calls] == [True, False]


def test_the_rounds_end_and_the_model_must_answer(tool_agent):
    call = ToolCall(name="weather", arguments={"city": "Oslo"})
    agent, backend = tool_agent([call, call, "It is cold in Oslo."], tools={"max_rounds": 2})
    reply = agent.chat("Weather in Oslo?")
    assert reply.text == "It is cold in Oslo." and len(reply.tool_calls) == 2
    assert [len(c.tools) for c in backend.history] == [2, 2, 0]  # the last call offers no tools


def test_without_tools_nothing_is_offered(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    backend = FakeBackend(["hi"])
    agent = Agent(fake_config(), backend=backend, skills={})
    try:
        reply = agent.chat("hello")
    finally:
        agent.close()
    assert backend.history[0].tools == () and reply.tool_calls == []


def test_ask_json_prints_the_calls(tmp_path, capsys, monkeypatch):
    import yaml

    from agent.cli.main import main

    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"model": {"backend": "fake"}, "memory": {"enabled": False},
                                      "understanding": {"enabled": False},
                                      "tools": {"enabled": ["tests.helpers.tools:weather"]}}))
    from agent.backends import fake

    original = fake.FakeBackend.__init__

    def scripted(self, replies=(), **kw):  # the CLI builds its own backend: script it
        original(self, [ToolCall(name="weather", arguments={"city": "Lyon"}), "Rainy."], **kw)

    monkeypatch.setattr(fake.FakeBackend, "__init__", scripted)
    assert main(["ask", "Weather in Lyon?", "--json", "--config", str(config)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "Rainy." and out["tool_calls"][0]["name"] == "weather"
    assert out["tool_calls"][0]["arguments"] == {"city": "Lyon"} and "light rain" in out["tool_calls"][0]["result"]


def test_an_intent_routed_to_a_tool_makes_the_model_call_it_first(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend
    from agent.toolbox.convtest import Expect, ExpectedCall, check
    from agent.turn import Label, Understood
    from tests.helpers.tools import order_status, weather

    class OrderIntent:
        def analyze(self, text, vector, prior_sentiments):
            return Understood(intent=Label(label="order_status" if "order" in text else "chitchat", score=0.9))

    call = ToolCall(name="order_status", arguments={"order_id": 1234})
    backend = FakeBackend([call, "Order 1234 has shipped.", "Hello!"])
    agent = Agent(fake_config(understanding={"routes": {"order_status": "tool:order_status"}}), backend=backend,
                  skills={}, tools=[order_status, weather], understanding=OrderIntent())
    try:
        reply = agent.chat("Where is my order 1234?")
        greeting = agent.chat("hi there")
    finally:
        agent.close()
    assert reply.skill == "tool:order_status" and [c.tool_choice for c in backend.history[:2]] == ["order_status", "auto"]
    assert greeting.skill is None and backend.history[2].tool_choice == "auto"
    assert check(reply, Expect(tool_calls=[ExpectedCall(name="order_status", arguments={"order_id": 1234})])) == []
    wrong = check(reply, Expect(tool_calls=[ExpectedCall(name="order_status", arguments={"order_id": 99})]))
    assert wrong and "order_id" in wrong[0]
    assert check(greeting, Expect(tool_calls=[])) == []


def test_a_return_direct_tool_answers_for_the_model(fake_config):
    """A return_direct tool's result is the reply (the model is not asked again); a direct
    tool that raises shows its message, not the model's `error: ...` line."""
    from agent import Agent
    from agent.backends import FakeBackend
    from skills.tools import tool

    @tool(return_direct=True)
    def lookup(order_id: int) -> str:
        """Look up an order.

        Args:
            order_id: the order number
        """
        if order_id != 7:
            raise ValueError(f"I can't find order {order_id}; please check the number")
        return "Order 7 has shipped."

    backend = FakeBackend([ToolCall(name="lookup", arguments={"order_id": 7}),
                           ToolCall(name="lookup", arguments={"order_id": 8})])
    agent = Agent(fake_config(), backend=backend, skills={}, tools=[lookup])
    try:
        reply = agent.chat("Where is order 7?")
        assert reply.text == "Order 7 has shipped." and reply.finish_reason == "stop"
        assert len(backend.history) == 1  # the model phrased nothing after the call
        assert [(r.name, r.arguments, r.ok) for r in reply.tool_calls] == [("lookup", {"order_id": 7}, True)]
        failed = agent.chat("And order 8?")
        assert failed.text == "I can't find order 8; please check the number" and not failed.tool_calls[0].ok
        assert len(backend.history) == 2
    finally:
        agent.close()


def test_a_forced_call_gets_room_to_finish_its_arguments(fake_config):
    """A round whose reply must be a call (an intent routed to a tool) runs with at least
    tools.call_max_tokens, whatever generation.max_new_tokens says: a cap that closes the
    call's JSON early cut "1234" to 1 on the 135M. The answer after it keeps the cap."""
    from agent import Agent
    from agent.backends import FakeBackend
    from agent.turn import Label, Understood
    from tests.helpers.tools import order_status

    class OrderIntent:
        def analyze(self, text, vector, prior_sentiments):
            return Understood(intent=Label(label="order_status", score=0.9))

    backend = FakeBackend([ToolCall(name="order_status", arguments={"order_id": 1234}), "It has shipped."])
    config = fake_config(generation={"max_new_tokens": 32}, understanding={"routes": {"order_status": "tool:order_status"}})
    agent = Agent(config, backend=backend, skills={}, tools=[order_status], understanding=OrderIntent())
    try:
        agent.chat("Where is my order 1234?")
    finally:
        agent.close()
    assert [(c.tool_choice, c.options.max_new_tokens) for c in backend.history] == [("order_status", 160), ("auto", 32)]
