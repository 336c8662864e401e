"""The openai backend passes tools, tool_choice and response_format through and reads the
server's tool calls back, streamed (deltas by index) and whole, against a loopback server."""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from agent.backends import OpenAIBackend
from agent.errors import BackendError
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolCall, ToolSpec
from tests.helpers.http import send_json, serve_handler

WEATHER = ToolSpec(name="get_weather", description="Weather in a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CLOCK = ToolSpec(name="get_time", description="The time in a city",
                 parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def _deltas():
    """Two calls streamed the way OpenAI does: id and name first, arguments in pieces, the
    second call's pieces interleaved with the first's tail."""
    return [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"ci'}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"city"'}},
        {"index": 0, "function": {"arguments": 'ty": "Paris"}'}},
        {"index": 1, "function": {"arguments": ': "Oslo"}'}},
    ]


class _Handler(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        model = body["model"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": None,
                       "tool_calls": [{"id": "call_x", "type": "function",
                                       "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}
            if model == "whole-text":
                message = {"role": "assistant", "content": '{"ok": true}'}
            self._json({"choices": [{"index": 0, "message": message,
                                     "finish_reason": "tool_calls" if "tool_calls" in message else "stop"}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 4}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunks = []
        if model == "calls":
            chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [d]},
                                    "finish_reason": None}]} for d in _deltas()]
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        elif model == "bad-args":
            chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": '{"city": '}}]},
                "finish_reason": "tool_calls"}]}]
        else:
            chunks = [{"choices": [{"index": 0, "delta": {"content": "plain"}, "finish_reason": None}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, payload):
        send_json(self, 200, payload)


@pytest.fixture(scope="module")
def server():
    with serve_handler(_Handler) as url:
        yield url


USER = [{"role": "user", "content": "weather in Paris and time in Oslo?"}]


def test_tools_and_choice_are_in_the_payload_and_streamed_calls_accumulate(server):
    backend = OpenAIBackend(server, "calls")
    stream = backend.stream(USER, GenerationOptions(), tools=[WEATHER, CLOCK], tool_choice="required")
    assert stream.text() == ""
    assert [(c.id, c.name, c.arguments) for c in stream.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"city": "Oslo"})]
    assert stream.finish_reason == "tool_calls"
    body = _Handler.requests[-1]
    assert body["tools"] == [WEATHER.openai(), CLOCK.openai()] and body["tool_choice"] == "required"
    assert "response_format" not in body


def test_a_named_tool_choice_uses_openais_object_form(server):
    backend = OpenAIBackend(server, "calls")
    backend.stream(USER, GenerationOptions(), tools=[WEATHER, CLOCK], tool_choice="get_time").text()
    assert _Handler.requests[-1]["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}


def test_history_with_calls_and_results_goes_out_in_openais_shape(server):
    backend = OpenAIBackend(server, "plain")
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    history = [*USER, {"role": "assistant", "content": None, "tool_calls": [call.openai()]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
               {"role": "assistant", "content": None,
                "tool_calls": [{"id": "call_2", "type": "function",
                                "function": {"name": "get_time", "arguments": {"city": "Oslo"}}}]}]
    assert backend.stream(history, GenerationOptions(), tools=[WEATHER]).text() == "plain"
    sent = _Handler.requests[-1]["messages"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": [call.openai()]}
    assert sent[2] == {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"}
    assert sent[3]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'  # objects become JSON text


def test_response_format_passes_through(server):
    backend = OpenAIBackend(server, "plain")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    backend.stream(USER, GenerationOptions(), response_format=ResponseFormat(type="json_schema", schema=schema,
                                                                            name="answer")).text()
    assert _Handler.requests[-1]["response_format"] == {"type": "json_schema",
                                                        "json_schema": {"name": "answer", "schema": schema}}
    backend.stream(USER, GenerationOptions(), response_format=ResponseFormat(type="json_object")).text()
    assert _Handler.requests[-1]["response_format"] == {"type": "json_object"}
    backend.stream(USER, GenerationOptions()).text()
    assert "tools" not in _Handler.requests[-1] and "response_format" not in _Handler.requests[-1]


def test_a_whole_response_is_read_too(server):
    backend = OpenAIBackend(server, "whole", stream=False)
    stream = backend.stream(USER, GenerationOptions(), tools=[WEATHER])
    assert stream.text() == ""
    assert [(c.id, c.name, c.arguments) for c in stream.tool_calls] == [("call_x", "get_weather", {"city": "Rome"})]
    assert stream.finish_reason == "tool_calls" and stream.prompt_tokens == 7 and stream.completion_tokens == 4
    body = _Handler.requests[-1]
    assert body["stream"] is False and "stream_options" not in body
    text = OpenAIBackend(server, "whole-text", stream=False).stream(USER, GenerationOptions())
    assert text.text() == '{"ok": true}' and text.tool_calls == [] and text.finish_reason == "stop"


def test_arguments_that_are_not_json_are_a_clear_error(server):
    backend = OpenAIBackend(server, "bad-args")
    with pytest.raises(BackendError, match="not JSON"):
        backend.stream(USER, GenerationOptions(), tools=[WEATHER]).text()
