"""Deleting a session takes its memories with it (Python API, server, CLI), and the knowledge
base has one set of documents with visible scopes (shared, a user's own) and citations to the
right lines."""

from __future__ import annotations

from pathlib import Path

import yaml

MEMORY = {"enabled": True, "embedder": "fake", "inject_min_similarity": -1.0}


def _memories(client, user: str) -> list[str]:
    return [m["text"] for m in client.get(f"/v1/users/{user}/memories").json()["data"]]


def test_deleting_a_session_over_http_deletes_the_memories_from_it(make_app, client_for):
    app, agent, _ = make_app(["Noted."] * 4, memory=MEMORY)
    client = client_for(app)
    first = client.post("/v1/sessions", json={"user": "ann"}).json()["id"]
    second = client.post("/v1/sessions", json={"user": "ann"}).json()["id"]
    client.post(f"/v1/sessions/{first}/messages", json={"content": "My diagnosis is type 2 diabetes."})
    client.post(f"/v1/sessions/{second}/messages", json={"content": "I work as a nurse in Lyon."})
    assert sorted(_memories(client, "ann")) == ["I work as a nurse in Lyon.", "My diagnosis is type 2 diabetes."]
    assert client.delete(f"/v1/sessions/{first}").json()["deleted"] is True
    assert _memories(client, "ann") == ["I work as a nurse in Lyon."]
    assert not [h for h in agent.memory.search("diagnosis diabetes", k=10, user_id="ann") if "diabetes" in h.text]


def test_a_users_documents_have_their_scope_and_cite_the_right_line(make_app, client_for, tmp_path):
    app, agent, _ = make_app(["I cannot tell."] * 4, memory=MEMORY)
    client = client_for(app)
    policy = tmp_path / "policy.txt"
    policy.write_text("Shipping\n\nOrders ship in two days.\nGift cards never expire.\n\n"
                      "Returns\n\nRefunds are paid within 14 days of the return.\n", encoding="utf-8")
    assert agent.add_document(policy) >= 1  # shared, as `llmos kb add` does
    contract = "# Contract\n\nIntro.\n\nThe notice period is two months.\n"
    added = client.post("/v1/users/ann/documents", json={"name": "contract.md", "text": contract})
    assert added.status_code == 201 and added.json()["scope"] == "user ann" and added.json()["passages"] == 1
    again = client.post("/v1/users/ann/documents", json={"name": "contract.md", "text": contract}).json()
    assert again["unchanged"] is True

    listed = client.get("/v1/users/ann/documents").json()["data"]
    assert [(d["source"], d["scope"]) for d in listed] == [(str(policy.resolve()), "shared"), ("contract.md", "user ann")]
    assert [d["scope"] for d in client.get("/v1/users/bob/documents").json()["data"]] == ["shared"]

    sid = client.post("/v1/sessions", json={"user": "ann"}).json()["id"]
    reply = client.post(f"/v1/sessions/{sid}/messages", json={"content": "/qa how long is the notice period?"}).json()
    assert "two months" in reply["text"] and "contract.md (line 5)" in reply["text"], reply["text"]
    reply = client.post(f"/v1/sessions/{sid}/messages",
                        json={"content": "/qa refunds are paid within how many days of the return?"}).json()
    assert f"{policy.resolve()} (line 8)" in reply["text"], reply["text"]

    gone = client.delete("/v1/users/ann/documents", params={"name": "contract.md"}).json()
    assert gone["deleted"] is True and gone["passages"] == 1
    assert [d["scope"] for d in client.get("/v1/users/ann/documents").json()["data"]] == ["shared"]
    assert client.post("/v1/users/ann/documents", json={"name": "", "text": "x"}).status_code == 400


def test_the_cli_deletes_sessions_with_their_memories_and_lists_every_scope(tmp_path, capsys):
    from agent.cli.main import main
    from agent.config import load_config
    from agent.dialogue import Agent

    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"model": {"backend": "fake"}, "understanding": {"enabled": False},
                                      "memory": MEMORY, "data_dir": str(tmp_path / "data")}))
    doc = tmp_path / "returns.md"
    doc.write_text("# Returns\n\nKeep the receipt.\n", encoding="utf-8")
    agent = Agent(load_config(config))  # as the CLI reads it (LLMOS_* variables included)
    try:
        kept = agent.chat("I have two cats.").session_id
        gone = agent.chat("My bank PIN hint is the blue door.").session_id
        agent.add_document(doc, user_id="local")  # what the TUI's attach does
    finally:
        agent.close()

    assert main(["sessions", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert kept in listing and gone in listing
    assert main(["sessions", "delete", gone, "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"deleted session {gone} and 1 memory from it"
    assert main(["sessions", "delete", gone, "--config", str(config)]) == 2  # not there any more: a usage error
    assert "has no session" in capsys.readouterr().err
    assert main(["memory", "list", "--config", str(config)]) == 0
    memories = capsys.readouterr().out
    assert "two cats" in memories and "blue door" not in memories

    assert main(["kb", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "user local" in out and str(Path(doc).resolve()) in out
    assert out.index("user local") < out.index(str(Path(doc).resolve()))
