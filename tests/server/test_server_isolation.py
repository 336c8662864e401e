"""50 concurrent clients, distinct users, each with a canary fact: no canary ever reaches
another user's reply, memories or metadata. Uses the real memory store (SQLite + FAISS)
with the deterministic fake embedder; the fake backend echoes its whole prompt, recalled
memories included, so a leak in recall would show up in the reply text."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from memory import FakeEmbedder, MemoryConfig, build_store

CANARY = re.compile(r"CANARY-[0-9a-f]{12}")
USERS = 50


async def _user(client: httpx.AsyncClient, i: int, canary: str) -> tuple[str, list[str]]:
    user = f"user-{i:02d}"
    seen: list[str] = []
    tell = await client.post("/v1/chat/completions", json={
        "model": "llmos", "user": user, "messages": [{"role": "user", "content": f"My secret code is {canary}."}]})
    assert tell.status_code == 200, tell.text
    seen.append(tell.text)
    # A new conversation: only memory can bring the canary back.
    async with client.stream("POST", "/v1/chat/completions", json={
            "model": "llmos", "user": user, "stream": True,
            "messages": [{"role": "user", "content": "What is my secret code?"}]}) as ask:
        assert ask.status_code == 200
        await ask.aread()
        seen.append(ask.text)
    memories = await client.get(f"/v1/users/{user}/memories")
    seen.append(memories.text)
    sessions = await client.get("/v1/sessions", params={"user": user})
    for session in sessions.json()["data"]:
        seen.append((await client.get(f"/v1/sessions/{session['id']}")).text)
    return user, seen


def test_fifty_users_never_see_each_others_canaries(make_app, serve, tmp_path):
    embedder = FakeEmbedder()
    store = build_store(MemoryConfig(), data_dir=tmp_path / "memory", embedder=embedder)
    app, agent, _ = make_app(memory={"enabled": True}, agent_kwargs={"memory": store, "embedder": embedder},
                             server={"max_concurrent": 1000, "rate_limit_burst": 1000})
    canaries = [f"CANARY-{uuid.uuid4().hex[:12]}" for _ in range(USERS)]

    async def run(url: str) -> list[tuple[str, list[str]]]:
        limits = httpx.Limits(max_connections=USERS)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            return await asyncio.gather(*(_user(client, i, c) for i, c in enumerate(canaries)))

    with serve(app) as url:
        results = asyncio.run(run(url))
    recalled = 0
    for (user, texts), own in zip(results, canaries, strict=True):
        found = {c for text in texts for c in CANARY.findall(text)}
        assert found <= {own}, f"{user} saw another user's canary: {found - {own}}"
        assert own in texts[0]
        recalled += own in texts[1]  # the second conversation's reply recalled it
        stored = {c for ref in agent.remember(user) for c in CANARY.findall(ref.text)}
        assert stored == {own}
    assert recalled == USERS  # recall works, so the isolation check is not vacuous
