"""The kb, memory and eval memory commands, end to end on the fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main
from tests.helpers.documents import locomo_sample, make_pdf


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nmemory:\n  embedder: fake\n")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_kb_commands(cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# Returns\n\nYou can return an item within 30 days.\n")
    (docs / "guide.pdf").write_bytes(make_pdf(["Press the blue button to pair the headset."]))
    code, out, _ = _run(capsys, "kb", "add", str(docs), "--config", cfg, "--no-progress")
    assert code == 0 and "added 2 file(s)" in out and "shared knowledge base" in out
    code, out, _ = _run(capsys, "kb", "list", "--config", cfg, "--json")
    assert {Path(d["source"]).name for d in json.loads(out)} == {"faq.md", "guide.pdf"}
    code, out, _ = _run(capsys, "kb", "search", "pair the headset", "--config", cfg, "--json")
    top = json.loads(out)[0]
    assert top["kind"] == "document" and top["locator"] == "page 1" and "blue button" in top["text"]
    code, out, _ = _run(capsys, "kb", "search", "return an item", "--config", cfg)
    assert "faq.md" in out
    code, out, _ = _run(capsys, "kb", "remove", str(docs / "faq.md"), "--config", cfg)
    assert code == 0 and "removed" in out
    code, _, err = _run(capsys, "kb", "remove", str(docs / "faq.md"), "--config", cfg)
    assert code == 2 and "not in the knowledge base" in err


def test_memory_commands(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.config import load_config
    from memory import build_store

    config = load_config(cfg)
    with build_store(config.memory, data_dir=config.resolved_data_dir() / "memory") as store:
        store.add("my favourite food is ramen", user_id="local")
        store.add("bob's favourite food is pizza", user_id="bob")
    code, out, _ = _run(capsys, "memory", "search", "favourite food", "--config", cfg, "--json")
    assert [h["text"] for h in json.loads(out)] == ["my favourite food is ramen"]
    code, out, _ = _run(capsys, "memory", "list", "--user", "bob", "--config", cfg)
    assert "pizza" in out and "ramen" not in out
    code, out, _ = _run(capsys, "memory", "forget", "--user", "bob", "--config", cfg)
    assert code == 0 and "forgot 1" in out
    code, out, _ = _run(capsys, "memory", "list", "--user", "bob", "--config", cfg, "--json")
    assert json.loads(out) == []
    with pytest.raises(SystemExit):  # forgetting needs an explicit user
        main(["memory", "forget", "--config", cfg])


def test_eval_memory_json(cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "eval", "memory", "--locomo", str(locomo_sample(tmp_path)), "--json", "--config", cfg)
    result = json.loads(out)
    assert code == 0 and {"recall@5", "recall@10", "per_category"} <= set(result)
    code, out, _ = _run(capsys, "eval", "memory", "--locomo", str(locomo_sample(tmp_path)), "--config", cfg,
                        "--ablation", "--limit", "2")
    assert "dense" in out and "+rewrite" in out
