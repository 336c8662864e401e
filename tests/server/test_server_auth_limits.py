"""API keys (hashed, bound to users), loopback-only without keys, 429 and 413."""

from __future__ import annotations

import threading

import pytest

from agent.cli.main import main
from agent.errors import ConfigError
from agent.server.auth import hash_key

CHAT = {"model": "llmos", "messages": [{"role": "user", "content": "hello"}]}


def _keys(**extra):
    return {"api_keys": [
        {"name": "desk", "sha256": hash_key("desk-key"), "users": ["*"]},
        {"name": "bot", "sha256": hash_key("bot-key").upper(), "users": ["bot-user", "bot-2"], **extra},
    ]}


def test_without_keys_only_loopback_clients_are_served(make_app, client_for):
    app, agent, _ = make_app()
    assert client_for(app).post("/v1/chat/completions", json=CHAT).status_code == 200
    remote = client_for(app, host="203.0.113.9").post("/v1/chat/completions", json=CHAT)
    assert remote.status_code == 403 and "only answers clients on this machine" in remote.json()["error"]["message"]
    assert client_for(app, host="203.0.113.9").get("/healthz").status_code == 200
    assert len(agent.sessions("local")) == 1


def test_keys_are_required_and_bound_to_their_users(make_app, client_for):
    app, agent, _ = make_app(server=_keys())
    client = client_for(app, host="203.0.113.9")
    missing = client.post("/v1/chat/completions", json=CHAT)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer nope"}).status_code == 401
    bot = {"Authorization": "Bearer bot-key"}
    ok = client.post("/v1/chat/completions", json=CHAT, headers=bot).json()
    assert ok["llmos"]["user_id"] == "bot-user"  # the key's first user is its default
    other = client.post("/v1/chat/completions", json={**CHAT, "user": "ann"}, headers=bot)
    assert other.status_code == 403 and "may not act for user 'ann'" in other.json()["error"]["message"]
    desk = {"Authorization": "Bearer desk-key"}
    assert client.post("/v1/chat/completions", json={**CHAT, "user": "ann"}, headers=desk).status_code == 200
    # A session of a user the key may not act for does not exist as far as that key knows.
    sid = agent.sessions("ann")[0].id
    assert client.get(f"/v1/sessions/{sid}", headers=bot).status_code == 404
    assert client.get(f"/v1/sessions/{sid}", headers=desk).status_code == 200
    assert client.delete("/v1/users/ann", headers=bot).status_code == 403
    assert agent.sessions("ann")


def test_config_rejects_a_key_that_is_not_a_hash(fake_config):
    with pytest.raises(ConfigError, match=r"server.api_keys.0.sha256"):
        fake_config(server={"api_keys": [{"name": "x", "sha256": "plain-text-key", "users": ["*"]}]})
    with pytest.raises(ConfigError, match="unknown key 'server.port_number'"):
        fake_config(server={"port_number": 1})


def test_rate_limit_answers_429_with_retry_after(make_app, client_for):
    app, _, _ = make_app(server={**_keys(rate_limit_per_minute=1), "rate_limit_burst": 2})
    client = client_for(app, host="203.0.113.9")
    bot = {"Authorization": "Bearer bot-key"}
    codes = [client.get("/v1/models", headers=bot).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/v1/models", headers=bot)
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"]["type"] == "rate_limit_error"
    # Limits are per key.
    assert client.get("/v1/models", headers={"Authorization": "Bearer desk-key"}).status_code == 200


def test_concurrency_cap_answers_429(make_app, serve):
    import httpx

    app, _, _ = make_app(["slow " * 400], delay=0.05, server={"max_concurrent": 1})  # 20 s unless cancelled
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as first:
            lines = first.iter_lines()  # keep the iterator: dropping it closes the connection
            next(lines)
            second = client.post("/v1/chat/completions", json=CHAT)
            assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_concurrent"
        # The slot comes back once the first turn ends (cancelled: the client closed it).
        for _ in range(100):
            if client.post("/v1/chat/completions", json=CHAT).status_code == 200:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the concurrency slot was never released")


def test_serve_key_prints_a_hash_for_the_config(capsys):
    assert main(["serve-key", "--key", "s3cret", "--name", "shop", "--users", "a,b"]) == 0
    out = capsys.readouterr().out
    assert hash_key("s3cret") in out and "name: \"shop\"" in out and 'users: ["a", "b"]' in out
    assert main(["serve-key"]) == 0
    assert "API key" in capsys.readouterr().out
