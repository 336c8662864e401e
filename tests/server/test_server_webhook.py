"""The handoff webhook: the session summary is POSTed, retried with backoff, and never
holds up the reply."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers.server import KeywordUnderstanding


class _Receiver:
    """A loopback HTTP endpoint that fails the first ``failures`` POSTs with 503 and
    answers each request only after ``delay`` seconds."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.delivered = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append((dict(self.headers), body))
                time.sleep(outer.delay)
                ok = len(outer.calls) > outer.failures
                self.send_response(200 if ok else 503)
                self.end_headers()
                if ok:
                    outer.delivered.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_handoff_posts_the_session_summary_with_retries(make_app, client_for, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    receiver = _Receiver(failures=2, delay=0.3)
    try:
        app, agent, _ = make_app(["Happy to help.", "Connecting you to a person."],
                                 agent_kwargs={"understanding": KeywordUnderstanding()},
                                 server={"webhook": {"url": receiver.url, "retries": 3, "backoff_s": 0.05,
                                                     "secret_env": "HOOK_SECRET"}})
        client = client_for(app)
        sid = client.post("/v1/sessions", json={"user": "ann"}).json()["id"]
        client.post(f"/v1/sessions/{sid}/messages", json={"content": "my order is late"})
        started = time.monotonic()
        reply = client.post(f"/v1/sessions/{sid}/messages", json={"content": "I want a human now"}).json()
        assert reply["handoff"] is True
        assert time.monotonic() - started < 0.3  # the receiver takes 0.3 s per call: not waited for
        assert receiver.delivered.wait(10)
    finally:
        receiver.close()
    assert len(receiver.calls) == 3  # two 503s, then delivered
    keys = {headers["Idempotency-Key"] for headers, _ in receiver.calls}
    assert len(keys) == 1  # the same notification each time
    headers, body = receiver.calls[-1]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Llmos-Signature"] == expected and headers["X-Llmos-Event"] == "handoff"
    payload = json.loads(body)
    assert payload["event"] == "handoff" and payload["session"]["id"] == sid
    assert payload["session"]["user_id"] == "ann" and payload["session"]["turns"] == 2
    assert [m["content"] for m in payload["transcript"]] == [
        "my order is late", "Happy to help.", "I want a human now", "Connecting you to a person."]
    assert payload["last_reply"] == "Connecting you to a person."


def test_an_unreachable_webhook_gives_up_quietly(make_app, client_for):
    from tests.helpers.server import free_port

    app, agent, _ = make_app(agent_kwargs={"understanding": KeywordUnderstanding()},
                             server={"webhook": {"url": f"http://127.0.0.1:{free_port()}/x", "retries": 2,
                                                 "backoff_s": 0.01}})
    notifier = app.state.llmos.notifier
    response = client_for(app).post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "human!"}]})
    assert response.status_code == 200 and response.json()["llmos"]["handoff"] is True
    deadline = time.monotonic() + 10
    while notifier.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert notifier.dropped == 1 and notifier.delivered == 0
