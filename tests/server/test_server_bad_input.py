"""Malformed JSON, wrong types, huge bodies, invalid UTF-8: a 4xx with a clear message and an
error id, nothing stored, and the server keeps serving."""

from __future__ import annotations

import pytest

CHAT = {"model": "llmos", "messages": [{"role": "user", "content": "hello"}]}
JSON = {"content-type": "application/json"}

BAD = [
    ("malformed JSON", b'{"messages": [', 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "invalid request"),
    ("empty body", b"", 400, "missing"),
    ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, "not valid UTF-8"),
    ("wrong type", b'{"messages": [{"role": "user", "content": 42}]}', 400, "messages.0.content"),
    ("string number", b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', 400, "temperature"),
    ("bool as string", b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', 400, "stream"),
    ("no messages", b'{"messages": []}', 400, "messages"),
    ("unknown role", b'{"messages": [{"role": "wizard", "content": "x"}]}', 400, "role"),
    ("last not user", b'{"messages": [{"role": "assistant", "content": "x"}]}', 400, "last message"),
    ("n > 1", b'{"messages": [{"role": "user", "content": "x"}], "n": 3}', 400, "n > 1"),
    ("only control chars", b'{"messages": [{"role": "user", "content": "\\u0000\\u0001"}]}', 400, "empty"),
    ("lone surrogate only", b'{"messages": [{"role": "user", "content": "\\ud800"}]}', 400, "empty"),
    ("bad user id", b'{"messages": [{"role": "user", "content": "x"}], "user": "a b"}', 400, "user id"),
    ("image content", b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', 400, "text"),
    ("too long", b'{"messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}', 400, "limit is 4,000"),
]


@pytest.mark.parametrize("body,status,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_chat_requests(make_app, client_for, body, status, message):
    app, agent, backend = make_app(max_input_chars=4000)
    client = client_for(app)
    response = client.post("/v1/chat/completions", content=body, headers=JSON)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"] and error["id"].startswith("err_")
    assert "Traceback" not in response.text
    assert agent.sessions("local") == [] and backend.history == []
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200  # still serving


def test_huge_bodies_are_refused_without_storing(make_app, client_for):
    app, agent, backend = make_app(server={"max_body_bytes": 4096})
    client = client_for(app)
    huge = {"messages": [{"role": "user", "content": "x" * 10_000}]}
    declared = client.post("/v1/chat/completions", json=huge)
    assert declared.status_code == 413 and "4,096 bytes" in declared.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit applies while reading
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    streamed = client.post("/v1/chat/completions", content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and streamed.json()["error"]["type"] == "request_too_large"
    assert agent.sessions("local") == [] and backend.history == []
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_session_api_bad_input(make_app, client_for):
    app, agent, backend = make_app()
    client = client_for(app)
    sid = client.post("/v1/sessions", json={}).json()["id"]
    for body in (b'{"content": ""}', b'{"content": 5}', b'{"content": "\xc3\x28"}', b"{oops", b'{"content": "\\u0007"}'):
        response = client.post(f"/v1/sessions/{sid}/messages", content=body, headers=JSON)
        assert response.status_code == 400, body
        assert response.json()["error"]["id"].startswith("err_")
    assert agent.history(sid) == [] and backend.history == []
    assert client.post("/v1/sessions/nope/messages", json={"content": "hi"}).status_code == 404
    assert client.post("/v1/sessions", json={"user": 7}).status_code == 400


def test_unexpected_errors_have_an_id_and_no_traceback(make_app, client_for):
    app, agent, backend = make_app()
    backend.enqueue(RuntimeError("secret internal detail"))
    response = client_for(app).post("/v1/chat/completions", json=CHAT)
    body = response.json()
    assert response.status_code == 500 and body["error"]["id"] in body["error"]["message"]
    assert "secret internal detail" not in response.text and "Traceback" not in response.text


def test_backend_errors_mid_stream_become_an_error_event(make_app, client_for):
    from agent.backends.fake import failing

    app, _, backend = make_app()
    backend.enqueue(failing("the model server is down: start it"))
    response = client_for(app).post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200  # headers were sent before the backend failed
    assert '"error"' in response.text and "the model server is down" in response.text
    assert response.text.rstrip().endswith("data: [DONE]")
