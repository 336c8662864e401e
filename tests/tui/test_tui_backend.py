"""The model server goes away, and comes back: the ``openai`` backend against a real local
HTTP server (speaking the chat-completions streaming API) that the test starts and stops."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import Agent, load_config
from tests.helpers.tui import SIZE, chat, messages, notes, prompt, send, settle
from tui.app import ChatApp

pytestmark = pytest.mark.anyio


class _Completions(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        words = f"echo: {body['messages'][-1]['content']}".split(" ")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for index, word in enumerate(words):
            delta = {"content": word if index == 0 else " " + word}
            self.wfile.write(f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode())
            self.wfile.flush()
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())


class Server:
    """An OpenAI-compatible server on one loopback port, started and stopped at will."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Completions)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()  # the port refuses connections again
            self._httpd = None


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    yield found
    found.stop()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal_log() -> Iterator[_Terminal]:
    """A root handler writing to a "terminal", as ``llmos chat`` sets up (logging.basicConfig)."""
    stream = _Terminal()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


async def test_the_chat_survives_its_model_server_going_away(server: Server, terminal_log: _Terminal,
                                                             tmp_path: Path) -> None:
    config = load_config(environ={}, overrides={
        "model": {"backend": "openai", "name": "tiny", "base_url": server.url, "timeout_s": 10},
        "memory": {"enabled": False}, "understanding": {"enabled": False}, "data_dir": str(tmp_path / "data")})
    agent = Agent(config)
    log_file = tmp_path / "chat.log"
    app = ChatApp(agent, log_file=log_file)
    async with app.run_test(size=SIZE) as pilot:
        # not started yet: one line that says what to do, the message stays in the input
        await send(pilot, "hello, anyone there?")
        [error] = notes(app)
        assert "cannot reach the OpenAI-compatible server" in error and "is it running?" in error
        assert "\n" not in error and "Traceback" not in error
        assert prompt(app).text == "hello, anyone there?"
        assert messages(app) == [] and chat(app).status.state == "error"

        # the server starts: the same message goes through (Enter again)
        server.start()
        prompt(app).action_submit()
        await settle(pilot)
        assert [v.text for v in messages(app)] == ["hello, anyone there?", "echo: hello, anyone there?"]
        session = chat(app).session_id
        assert chat(app).status.state.startswith("ready")

        # it goes away mid-session, and a skill's turn fails on it: said in one line, nothing
        # written over the screen, the draft kept, the session as it was
        server.stop()
        text = "/summarize " + "The quick brown fox jumps over the lazy dog by the river. " * 12
        await send(pilot, text)
        assert "cannot reach" in notes(app)[-1] and "\n" not in notes(app)[-1]
        assert prompt(app).text == text
        assert [v.text for v in messages(app)] == ["hello, anyone there?", "echo: hello, anyone there?"]
        assert terminal_log.getvalue() == "", "no log record (a skill's traceback) drawn over the UI"
        assert "skill summarize failed" in log_file.read_text(encoding="utf-8"), "it is in the log file"

        # back again: the conversation goes on in the same session
        server.start()
        prompt(app).clear()
        await send(pilot, "still there?")
        assert messages(app)[-1].text == "echo: still there?"
        assert chat(app).session_id == session
        assert [m.content for m in agent.history(session)] == [
            "hello, anyone there?", "echo: hello, anyone there?", "still there?", "echo: still there?"]
    agent.close()
    logging.getLogger().info("after the app")  # the terminal handler is back once the app ends
    assert any(h.stream is terminal_log for h in logging.getLogger().handlers  # type: ignore[attr-defined]
               if isinstance(h, logging.StreamHandler))
