"""What an unauthenticated client can learn or cost: auth is checked before the body is
read, the API docs are behind the same auth (or public, or off, by a setting), /healthz
says only that the server is up, and `llmos serve` binds before it announces."""

from __future__ import annotations

import socket
import time

import pytest

from agent.server.auth import hash_key

KEYS = {"api_keys": [{"name": "desk", "sha256": hash_key("desk-key"), "users": ["*"]}]}
DESK = {"Authorization": "Bearer desk-key"}


def test_without_a_key_a_bad_body_is_401_not_400(make_app, client_for):
    app, _, _ = make_app(server=KEYS)
    client = client_for(app)
    for body in (b"{not json", b"\xff\xfe", b'{"messages": 5}'):
        answer = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 401, answer.text
        assert client.post("/v1/sessions", content=body).status_code == 401
    assert client.post("/v1/chat/completions", content=b"{not json", headers=DESK).status_code == 400


def test_auth_is_answered_before_the_body_arrives(make_app, serve):
    app, _, _ = make_app(server=KEYS)
    with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            # Announce 500 kB, send 10 bytes, and wait: the answer must not need the rest.
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500000\r\n\r\n{\"model\":")
            started = time.monotonic()
            head = conn.recv(4096).decode("latin-1")
        assert head.startswith("HTTP/1.1 401"), head
        assert time.monotonic() - started < 4


def test_docs_follow_the_api_keys(make_app, client_for):
    app, _, _ = make_app(server=KEYS)
    client = client_for(app, host="203.0.113.9")
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code in (401, 404), path
    assert client.get("/openapi.json").status_code == 401
    assert "/v1/chat/completions" in client.get("/openapi.json", headers=DESK).json()["paths"]
    assert client.get("/docs", headers=DESK).status_code == 200

    public, _, _ = make_app(server={**KEYS, "docs": "public"})
    assert client_for(public, host="203.0.113.9").get("/openapi.json").status_code == 200

    off, _, _ = make_app(server={**KEYS, "docs": "off"})
    assert client_for(off).get("/openapi.json", headers=DESK).status_code == 404
    assert client_for(off).get("/docs", headers=DESK).status_code == 404


def test_without_keys_the_docs_are_for_loopback_clients_only(make_app, client_for):
    app, _, _ = make_app()
    assert client_for(app).get("/openapi.json").status_code == 200
    assert client_for(app, host="203.0.113.9").get("/openapi.json").status_code == 403


def test_healthz_reveals_nothing_but_health(make_app, client_for):
    app, _, _ = make_app(server=KEYS)
    assert client_for(app, host="203.0.113.9").get("/healthz").json() == {"status": "ok"}


def test_serve_refuses_a_taken_port_before_announcing_or_loading(fake_config, capsys, tmp_path):
    from agent.errors import ConfigError
    from agent.server.run import serve

    config = fake_config(data_dir=str(tmp_path / "never"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"port {port} on 127.0.0.1 is in use.*--port"):
            serve(config, port=port)
    assert not (tmp_path / "never").exists()  # no agent was built: it fails in a moment, not after loading
    assert "serving" not in capsys.readouterr().err


def test_serve_announces_only_a_listening_socket():
    from agent.server.run import bind

    sock = bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=2):
            pass  # accepted into the backlog: it listens before anyone is told
    finally:
        sock.close()
