"""The OpenAI tools API on /v1/chat/completions, with the official openai client: tools,
tool_choice, parallel calls, tool messages in the history, response_format, streamed
tool_calls deltas."""

from __future__ import annotations

import json

import openai
import pytest

from agent.toolcalls import ToolCall

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Today's weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ORDER = {"type": "function", "function": {
    "name": "order_status", "description": "The status of an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}}}


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)


def test_the_client_gets_calls_runs_them_and_sends_the_results_back(make_app, serve):
    calls = [ToolCall(name="get_weather", arguments={"city": "Lyon"}),
             ToolCall(name="get_weather", arguments={"city": "Oslo"})]
    app, _, backend = make_app([calls, "Lyon 18 C, Oslo 2 C."])
    with serve(app) as url:
        client = _client(url)
        messages = [{"role": "user", "content": "Weather in Lyon and Oslo?"}]
        first = client.chat.completions.create(model="llmos", messages=messages, tools=[WEATHER, ORDER],
                                               tool_choice="auto")
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        got = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls]
        assert got == [("get_weather", {"city": "Lyon"}), ("get_weather", {"city": "Oslo"})]
        assert [t.name for t in backend.history[0].tools] == ["get_weather", "order_status"]
        assert backend.history[0].tool_choice == "auto"

        messages.append(choice.message.model_dump(exclude_none=True))
        for call in choice.message.tool_calls:
            city = json.loads(call.function.arguments)["city"]
            messages.append({"role": "tool", "tool_call_id": call.id, "content": f"{city}: fine"})
        second = client.chat.completions.create(model="llmos", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Lyon 18 C, Oslo 2 C."
    sent = backend.history[1].messages
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Lyon"}'}
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [(c.id, f"{a}: fine") for c, a in
                                                                     zip(calls, ["Lyon", "Oslo"], strict=True)]


def test_streamed_calls_arrive_as_tool_calls_deltas(make_app, serve):
    call = ToolCall(name="order_status", arguments={"order_id": 4417})
    app, _, backend = make_app([call])
    with serve(app) as url:
        stream = _client(url).chat.completions.create(
            model="llmos", stream=True, tools=[ORDER], messages=[{"role": "user", "content": "Order 4417?"}],
            tool_choice={"type": "function", "function": {"name": "order_status"}})
        chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.id, d.function.name, d.function.arguments) for d in deltas] == [
        (0, call.id, "order_status", '{"order_id": 4417}')]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert backend.history[0].tool_choice == "order_status"


def test_parallel_tool_calls_false_keeps_one_call(make_app, client_for):
    calls = [ToolCall(name="get_weather", arguments={"city": c}) for c in ("Lyon", "Oslo")]
    app, _, _ = make_app([calls])
    reply = client_for(app).post("/v1/chat/completions", json={
        "model": "llmos", "messages": [{"role": "user", "content": "both?"}], "tools": [WEATHER],
        "parallel_tool_calls": False}).json()
    assert [c["function"]["arguments"] for c in reply["choices"][0]["message"]["tool_calls"]] == ['{"city": "Lyon"}']


def test_response_format_reaches_the_backend(make_app, client_for):
    app, _, backend = make_app(['{"answer": 4}'])
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    reply = client_for(app).post("/v1/chat/completions", json={
        "model": "llmos", "messages": [{"role": "user", "content": "2+2 as JSON"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}}}).json()
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"answer": 4}
    fmt = backend.history[0].response_format
    assert fmt.type == "json_schema" and fmt.schema_ == schema and fmt.name == "sum"


@pytest.mark.parametrize("body,fragment", [
    ({"tool_choice": "required"}, "needs tools"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not among the offered"),
    ({"tools": [WEATHER, WEATHER]}, "share a name"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools"),
    ({"response_format": {"type": "json_schema"}}, "json_schema.schema"),
    ({"tools": [WEATHER], "extra_messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
])
def test_bad_tool_requests_are_400_with_the_fix(make_app, client_for, body, fragment):
    app, _, backend = make_app()
    messages = [{"role": "user", "content": "hi"}, *body.pop("extra_messages", [])]
    reply = client_for(app).post("/v1/chat/completions", json={"model": "llmos", "messages": messages, **body})
    assert reply.status_code == 400 and fragment in reply.json()["error"]["message"], reply.json()
    assert backend.history == []
