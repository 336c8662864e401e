"""The session API: sessions, full-pipeline turns (JSON and streamed), memories, forgetting."""

from __future__ import annotations

import json

from memory import FakeEmbedder, MemoryConfig, build_store
from tests.helpers.server import KeywordUnderstanding


def _events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_session_lifecycle_and_turns(make_app, client_for):
    app, agent, backend = make_app(["Hello Ann.", "Sure, a human will call.", "Bye."],
                                   agent_kwargs={"understanding": KeywordUnderstanding()})
    client = client_for(app)
    created = client.post("/v1/sessions", json={"user": "ann", "title": "billing"})
    assert created.status_code == 201
    sid = created.json()["id"]
    assert created.json()["user_id"] == "ann" and created.json()["title"] == "billing"

    reply = client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi there"}).json()
    assert reply["text"] == "Hello Ann." and reply["session_id"] == sid and reply["user_id"] == "ann"
    assert set(reply["timings_ms"]) >= {"understand", "recall", "generate", "persist", "total"}

    streamed = client.post(f"/v1/sessions/{sid}/messages", json={"content": "get me a human", "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _events(streamed.text)
    assert events[0] == {"type": "session", "session_id": sid, "user_id": "ann"}
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Sure, a human will call."
    assert events[-1]["type"] == "reply" and events[-1]["reply"]["handoff"] is True
    assert streamed.text.rstrip().endswith("data: [DONE]")

    client.post(f"/v1/sessions/{sid}/messages", json={"content": "thanks", "max_tokens": 1})
    assert backend.history[-1].options.max_new_tokens == 1

    detail = client.get(f"/v1/sessions/{sid}").json()
    assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == ["hi there", "get me a human", "thanks"]
    assert detail["turns"] == 3
    assert client.patch(f"/v1/sessions/{sid}", json={"title": "refund"}).json()["title"] == "refund"
    assert [s["id"] for s in client.get("/v1/sessions", params={"user": "ann"}).json()["data"]] == [sid]
    assert client.get("/v1/sessions", params={"user": "bob"}).json()["data"] == []
    assert client.delete(f"/v1/sessions/{sid}").json()["deleted"] is True
    assert client.get(f"/v1/sessions/{sid}").status_code == 404
    assert client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"}).status_code == 404


def test_chosen_session_ids_and_conflicts(make_app, client_for):
    app, _, _ = make_app()
    client = client_for(app)
    assert client.post("/v1/sessions", json={"user": "ann", "session_id": "T-1"}).status_code == 201
    again = client.post("/v1/sessions", json={"user": "ann", "session_id": "T-1"})
    assert again.status_code == 409 and "already has a session" in again.json()["error"]["message"]
    assert again.json()["error"]["type"] == "conflict"
    assert client.post("/v1/sessions", json={"session_id": "bad id!"}).status_code == 400
    assert client.get("/v1/sessions/bad%20id").status_code in (400, 404)


def test_memories_and_forgetting_a_user(make_app, client_for, tmp_path):
    embedder = FakeEmbedder()
    store = build_store(MemoryConfig(), data_dir=tmp_path / "mem", embedder=embedder)
    app, agent, _ = make_app(memory={"enabled": True}, agent_kwargs={"memory": store, "embedder": embedder})
    client = client_for(app)
    sid = client.post("/v1/sessions", json={"user": "dee"}).json()["id"]
    client.post(f"/v1/sessions/{sid}/messages", json={"content": "My dog is called Rex."})
    memories = client.get("/v1/users/dee/memories").json()["data"]
    assert [m["text"] for m in memories] == ["My dog is called Rex."]
    assert client.delete("/v1/users/dee").json() == {"id": "dee", "object": "user", "deleted": True}
    assert client.get("/v1/users/dee/memories").json()["data"] == []
    assert client.get("/v1/sessions", params={"user": "dee"}).json()["data"] == []


def test_concurrent_turns_of_one_session_stay_ordered_and_paired(make_app, serve):
    import asyncio

    import httpx

    app, agent, _ = make_app(delay=0.01)  # the fake backend echoes: "You said: <message>"
    sid = agent.new_session("ann").id

    async def send(client: httpx.AsyncClient, i: int) -> None:
        response = await client.post(f"/v1/sessions/{sid}/messages", json={"content": f"message {i}",
                                                                              "stream": i % 2 == 0})
        assert response.status_code == 200

    async def run(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await asyncio.gather(*(send(client, i) for i in range(8)))

    with serve(app) as url:
        asyncio.run(run(url))
    history = agent.history(sid)
    assert [m.role for m in history] == ["user", "assistant"] * 8
    assert [m.seq for m in history] == list(range(1, 17))
    for user, reply in zip(history[::2], history[1::2], strict=True):
        assert reply.content == f"You said: {user.content}"
    assert sorted(m.content for m in history[::2]) == sorted(f"message {i}" for i in range(8))
