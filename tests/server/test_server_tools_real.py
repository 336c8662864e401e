"""Issue 19's done-when: the official openai client, with tools and tool_choice="required",
gets a schema-valid call from `llmos serve` on the default model (the batching backend it
serves on CPU), streamed and not."""

from __future__ import annotations

import json

import openai
import pytest

ORDER = {"type": "function", "function": {
    "name": "order_status", "description": "The shipping status of a customer's order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"],
                   "additionalProperties": False}}}


@pytest.mark.real
def test_the_served_default_model_makes_schema_valid_calls(serve, tmp_path):
    from agent.config import load_config
    from agent.server import build_served_agent, create_app

    config = load_config(environ={}, overrides={"data_dir": str(tmp_path), "memory": {"enabled": False},
                                                "understanding": {"enabled": False}})
    agent = build_served_agent(config)
    try:
        assert type(agent.backend).__name__ in ("FastBatchingBackend", "OverridingBackend")
        with serve(create_app(agent)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
            messages = [{"role": "user", "content": "Where is my order 1234?"}]
            whole = client.chat.completions.create(model="llmos", messages=messages, tools=[ORDER],
                                                   tool_choice="required", max_tokens=48, temperature=0)
            chunks = list(client.chat.completions.create(model="llmos", messages=messages, tools=[ORDER],
                                                         tool_choice="required", max_tokens=48, temperature=0,
                                                         stream=True))
    finally:
        agent.close()
    [call] = whole.choices[0].message.tool_calls
    assert whole.choices[0].finish_reason == "tool_calls" and call.function.name == "order_status"
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"order_id"} and isinstance(arguments["order_id"], int)
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas and all(d.function.name == "order_status" for d in deltas)
    assert json.loads("".join(d.function.arguments for d in deltas)) == arguments  # greedy: the same call
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
