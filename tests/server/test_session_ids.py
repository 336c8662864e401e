"""Session ids are per user: another user's id is neither revealed nor blocked, on the
session API and on chat completions alike; a conflict on one's own id is 409 ``conflict``."""

from __future__ import annotations

import hashlib

from agent.config import ApiKeyConfig


def _keys(**users: list[str]) -> dict:
    """API keys named after their users (the key is the name)."""
    return {"api_keys": [ApiKeyConfig(name=name, sha256=hashlib.sha256(name.encode()).hexdigest(), users=tuple(u))
                         for name, u in users.items()]}


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


def test_bob_learns_nothing_about_alices_session_and_cannot_block_her(make_app, client_for):
    app, agent, _ = make_app(server=_keys(alice=["alice"], bob=["bob"]))
    client = client_for(app)
    # bob squats first: alice's ticket is still hers to make
    squat = client.post("/v1/sessions", json={"session_id": "ticket-99"}, headers=_as("bob"))
    assert squat.status_code == 201 and squat.json()["id"] == "ticket-99" and squat.json()["user_id"] == "bob"
    mine = client.post("/v1/sessions", json={"session_id": "ticket-99", "title": "A"}, headers=_as("alice"))
    assert mine.status_code == 201 and mine.json()["id"] == "ticket-99" and mine.json()["user_id"] == "alice"
    assert client.get("/v1/sessions/ticket-99", headers=_as("bob")).json()["user_id"] == "bob"
    assert client.get("/v1/sessions/ticket-99", headers=_as("alice")).json()["title"] == "A"
    gone = client.get("/v1/sessions/nobody-has-it", headers=_as("bob"))
    assert gone.status_code == 404
    # both converse in their own ticket-99
    for who in ("alice", "bob"):
        reply = client.post("/v1/sessions/ticket-99/messages", json={"content": f"I am {who}"}, headers=_as(who))
        assert reply.status_code == 200 and reply.json()["session_id"] == "ticket-99", reply.text
    for who in ("alice", "bob"):
        detail = client.get("/v1/sessions/ticket-99", headers=_as(who)).json()
        assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == [f"I am {who}"]
    assert [s["id"] for s in client.get("/v1/sessions", headers=_as("bob")).json()["data"]] == ["ticket-99"]
    # bob deleting his ticket-99 leaves alice's
    assert client.delete("/v1/sessions/ticket-99", headers=_as("bob")).status_code == 200
    assert client.get("/v1/sessions/ticket-99", headers=_as("alice")).status_code == 200
    assert client.get("/v1/sessions/ticket-99", headers=_as("bob")).status_code == 404


def test_creating_an_existing_id_answers_the_same_whoever_owns_it(make_app, client_for):
    app, _, _ = make_app(server=_keys(alice=["alice"], bob=["bob"]))
    client = client_for(app)
    assert client.post("/v1/sessions", json={"session_id": "T-1"}, headers=_as("alice")).status_code == 201
    fresh = client.post("/v1/sessions", json={"session_id": "T-2"}, headers=_as("bob"))
    taken_by_alice = client.post("/v1/sessions", json={"session_id": "T-1"}, headers=_as("bob"))
    assert fresh.status_code == taken_by_alice.status_code == 201
    assert set(fresh.json()) == set(taken_by_alice.json())
    again = client.post("/v1/sessions", json={"session_id": "T-1"}, headers=_as("alice"))
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["type"] == "conflict" and error["param"] == "session_id" and "already" in error["message"]


def test_server_chosen_ids_of_another_user_are_not_found(make_app, client_for):
    app, _, _ = make_app(server=_keys(alice=["alice"], bob=["bob"]))
    client = client_for(app)
    sid = client.post("/v1/sessions", json={}, headers=_as("alice")).json()["id"]
    for method, path in (("get", f"/v1/sessions/{sid}"), ("delete", f"/v1/sessions/{sid}"),
                         ("patch", f"/v1/sessions/{sid}"), ("post", f"/v1/sessions/{sid}/messages")):
        body = {"title": "x"} if method == "patch" else {"content": "x"} if method == "post" else None
        answer = client.request(method, path, json=body, headers=_as("bob"))
        assert answer.status_code == 404, (method, path, answer.text)
        assert sid in answer.json()["error"]["message"] and "alice" not in answer.text
    assert client.get(f"/v1/sessions/{sid}", headers=_as("alice")).status_code == 200


def test_chat_completions_session_ids_are_per_user_too(make_app, client_for):
    app, agent, _ = make_app(server=_keys(alice=["alice"], bob=["bob"]))
    client = client_for(app)

    def say(who: str, text: str):
        return client.post("/v1/chat/completions", headers=_as(who), json={
            "model": "llmos", "session_id": "ticket-42", "messages": [{"role": "user", "content": text}]})

    first = say("alice", "a")
    assert first.status_code == 200 and first.headers["X-Llmos-Session"] == "ticket-42"
    assert first.json()["llmos"]["session_id"] == "ticket-42"
    theirs = say("bob", "b")  # bob's own ticket-42: not a 404 that would reveal alice's
    assert theirs.status_code == 200 and theirs.json()["llmos"]["session_id"] == "ticket-42"
    assert say("alice", "c").status_code == 200
    [a], [b] = agent.sessions("alice"), agent.sessions("bob")
    assert a.id != b.id
    assert [m.content for m in agent.history(a.id)][::2] == ["a", "c"]
    assert [m.content for m in agent.history(b.id)][::2] == ["b"]
    streamed = client.post("/v1/chat/completions", headers=_as("bob"), json={
        "model": "llmos", "session_id": "ticket-42", "stream": True, "messages": [{"role": "user", "content": "d"}]})
    assert streamed.headers["X-Llmos-Session"] == "ticket-42" and '"session_id":"ticket-42"' in streamed.text


def test_a_key_for_several_users_names_the_user_when_an_id_is_ambiguous(make_app, client_for):
    app, _, _ = make_app(server=_keys(desk=["ann", "ben"], star=["*"]))
    client = client_for(app)
    for user in ("ann", "ben"):
        made = client.post("/v1/sessions", json={"user": user, "session_id": "T-7"}, headers=_as("desk"))
        assert made.status_code == 201
    assert client.get("/v1/sessions/T-7", params={"user": "ben"}, headers=_as("desk")).json()["user_id"] == "ben"
    unclear = client.get("/v1/sessions/T-7", headers=_as("desk"))
    assert unclear.status_code == 400 and "?user=" in unclear.json()["error"]["message"]
    client.delete("/v1/sessions/T-7", params={"user": "ann"}, headers=_as("desk"))
    assert client.get("/v1/sessions/T-7", headers=_as("desk")).json()["user_id"] == "ben"  # one left: found
    # a key for any user cannot try every user: the 404 says how to name one
    hint = client.get("/v1/sessions/T-7", headers=_as("star"))
    assert hint.status_code == 404 and "?user=" in hint.json()["error"]["message"]
    assert client.get("/v1/sessions/T-7", params={"user": "ben"}, headers=_as("star")).status_code == 200
