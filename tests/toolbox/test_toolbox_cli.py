"""The toolbox commands: data chitchat|clean, export, and chatting with a trained model."""

from __future__ import annotations

import json

import pytest

from agent.cli.main import build_parser, main


def test_commands_are_registered():
    parser = build_parser()
    args = parser.parse_args(["train", "lm", "--data", "d.jsonl", "-o", "out"])
    assert args.lora and args.model == "smollm2-135m" and args.max_length == 512
    assert not parser.parse_args(["train", "lm", "--data", "d", "-o", "o", "--full"]).lora
    assert parser.parse_args(["eval", "lm", "--data", "d"]).generate
    assert parser.parse_args(["export"]).format == "jsonl"
    assert parser.parse_args(["data", "clean", "in", "-o", "out", "--mask-pii"]).mask_pii


def test_data_chitchat_and_clean(tmp_path, capsys):
    raw, clean = tmp_path / "chitchat.jsonl", tmp_path / "clean.jsonl"
    assert main(["data", "chitchat", "-o", str(raw), "--limit", "30", "--raw"]) == 0
    assert len(raw.read_text().splitlines()) == 30
    with raw.open("a") as handle:
        first = raw.read_text().splitlines()[0]
        handle.write(first + "\n")  # an exact duplicate
        handle.write(json.dumps({"messages": [{"role": "user", "content": "mail me: a.b@example.com"},
                                              {"role": "assistant", "content": "call 555-123-4567"}]}) + "\n")
    assert main(["data", "clean", str(raw), "-o", str(clean), "--mask-pii"]) == 0
    assert "kept" in capsys.readouterr().out
    report = json.loads((tmp_path / "clean.jsonl.report.json").read_text())
    assert report["input"] == 32 and report["removed"]["exact_duplicate"] == 1
    # the one address and the one number written above; the chitchat lines have none
    assert (report["pii_masked"]["email"], report["pii_masked"]["phone"]) == (1, 1)
    last = json.loads(clean.read_text().splitlines()[-1])
    assert [m["content"] for m in last["messages"]] == ["mail me: [EMAIL]", "call [PHONE]"]


def test_export_command(tmp_path, capsys, monkeypatch):
    from agent.dialogue.store import ConversationStore

    config = tmp_path / "agent.yaml"
    config.write_text("model: {backend: fake}\n")
    monkeypatch.setenv("LLMOS_DATA_DIR", str(tmp_path / "data"))
    store = ConversationStore(tmp_path / "data" / "conversations.sqlite3")
    store.add_turn(store.create_session("ann").id, "hello", "hi there")
    store.close()
    assert main(["export", "--format", "jsonl", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["messages"][1]["content"] == "hi there"
    assert "exported 1 conversations" in captured.err


@pytest.mark.slow
def test_train_command_output_loads_by_path(tmp_path, tiny_model_dir, conversations_file, capsys):
    from agent.models.loader import load_model
    from tests.helpers.tiny_models import greedy_replies

    out = tmp_path / "tuned"
    assert main(["train", "lm", "--data", str(conversations_file(6)), "--model", str(tiny_model_dir("llama")),
                 "-o", str(out), "--max-steps", "1", "--batch-size", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "perplexity_after" in printed and f"llmos ask --model {out}" in printed
    streamed, batched = greedy_replies(load_model(str(out), fast=False), "hi", 3)
    assert streamed and streamed == batched
