"""The openai backend against a real HTTP server on loopback speaking the OpenAI wire format."""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from agent.backends import OpenAIBackend, complete
from agent.errors import BackendError
from agent.options import GenerationOptions
from tests.helpers.http import send_json, serve_handler


class _Handler(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        if self.headers.get("Authorization") != "Bearer sekret":
            self._json(401, {"error": {"message": "invalid api key"}})
            return
        if body["model"] == "missing":
            self._json(404, {"error": {"message": "model not found"}})
            return
        last = body["messages"][-1]["content"]
        words = f"echo: {last} END tail".split(" ")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if body["model"] == "garbage":
            self.wfile.write(b"data: {not json\n\n")
            return
        for i, word in enumerate(words):
            chunk = {"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                  "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(words)}}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())

    def _json(self, status, payload):
        send_json(self, status, payload)


@pytest.fixture(scope="module")
def server():
    with serve_handler(_Handler) as url:
        yield url


MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def test_streams_pieces_and_reads_usage(server):
    backend = OpenAIBackend(server, "tiny", api_key="sekret")
    stream = backend.stream(MESSAGES, GenerationOptions(max_new_tokens=50, seed=3))
    pieces = list(stream)
    assert "".join(pieces) == "echo: hello there END tail"
    assert len(pieces) > 1
    assert stream.prompt_tokens == 11 and stream.completion_tokens == 5 and stream.finish_reason == "stop"
    path, headers, body = _Handler.requests[-1]
    assert path == "/v1/chat/completions" and body["stream"] is True
    assert body["max_tokens"] == 50 and body["seed"] == 3 and body["messages"] == MESSAGES


def test_stop_strings_are_enforced_client_side(server):
    backend = OpenAIBackend(server, "tiny", api_key="sekret")
    assert complete(backend, MESSAGES, GenerationOptions(stop=["END"])) == "echo: hello there "


def test_wrong_key_says_what_to_do(server):
    backend = OpenAIBackend(server, "tiny", api_key="wrong")
    with pytest.raises(BackendError, match="401.*api_key_env"):
        complete(backend, MESSAGES)


def test_unknown_model_says_what_to_do(server):
    with pytest.raises(BackendError, match="404.*model not found"):
        complete(OpenAIBackend(server, "missing", api_key="sekret"), MESSAGES)


def test_malformed_event_is_a_backend_error(server):
    with pytest.raises(BackendError, match="not JSON"):
        complete(OpenAIBackend(server, "garbage", api_key="sekret"), MESSAGES)


def test_unreachable_server_is_a_clear_error():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "x", timeout_s=2)
    with pytest.raises(BackendError, match="cannot reach.*is it running"):
        complete(backend, MESSAGES)


def test_bad_url_is_rejected_up_front():
    with pytest.raises(BackendError, match="http://"):
        OpenAIBackend("localhost:8000", "x")


def test_agent_runs_on_the_openai_backend(server, fake_config, monkeypatch):
    from agent import Agent

    monkeypatch.setenv("TEST_KEY", "sekret")
    config = fake_config(model={"backend": "openai", "name": "tiny", "base_url": server, "api_key_env": "TEST_KEY"})
    agent = Agent(config)
    reply = agent.chat("hi from the agent")
    assert reply.text == "echo: hi from the agent END tail"
    assert reply.tokens.prompt == 11
