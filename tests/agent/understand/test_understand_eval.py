"""Metrics, the confusion-matrix PNG, and the train/eval commands (on a fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import cmd_understand
from agent.cli.main import main
from agent.models.embedder import FakeEmbedder
from agent.understand.metrics import evaluate_labels, format_report, save_confusion_png
from tests.helpers.understand import intent_examples, sentiment_examples


def test_metrics_by_hand() -> None:
    gold = ["a", "a", "b", "b", "oos", "oos"]
    pred = ["a", "b", "b", "oos", "oos", "a"]
    report = evaluate_labels(gold, pred, oos_label="oos")
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.in_scope_accuracy == pytest.approx(2 / 4)  # rejecting an in-scope query is an error
    assert report.oos_recall == pytest.approx(1 / 2)
    assert report.oos_precision == pytest.approx(1 / 2)
    stats = {s.label: s for s in report.per_label}
    assert stats["a"].precision == pytest.approx(1 / 2) and stats["a"].recall == pytest.approx(1 / 2)
    assert report.macro_f1 == pytest.approx(0.5)
    assert report.confusion.sum() == 6
    text = format_report(report)
    assert "in-scope accuracy" in text and "oos recall" in text


def test_confusion_png(tmp_path: Path) -> None:
    report = evaluate_labels(["x", "y", "y"], ["x", "y", "x"])
    path = save_confusion_png(report, tmp_path / "sub" / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands build the real embedder by name; these tests hand them the fake one.
    monkeypatch.setattr(cmd_understand, "_embedder", lambda name: FakeEmbedder())


def _splits(tmp_path: Path) -> Path:
    texts, labels = intent_examples()
    pairs = [[t, label] for t, label in zip(texts, labels, strict=True)]
    oos = [["zebra quantum violin", "oos"], ["tax form deadline", "oos"], ["parking ticket appeal", "oos"]]
    data = {"train": pairs, "oos_train": oos, "test": pairs[::3], "oos_test": [["mortgage insurance paperwork", "oos"]]}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    return path


def test_train_and_eval_intents(fake_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _splits(tmp_path)
    assert main(["train", "intents", f"{data}#train+oos_train", "-o", str(tmp_path / "m"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["intents"] == 4 and summary["oos_label"] == "oos"
    assert (tmp_path / "m" / "meta.json").is_file()
    png = tmp_path / "cm.png"
    assert main(["eval", "intents", "--train", f"{data}#train+oos_train", "--test", f"{data}#test+oos_test",
                 "--json", "--png", str(png)]) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("in_scope_accuracy", "accuracy", "macro_f1", "oos_precision", "oos_recall", "train_seconds",
                "embed_seconds", "train_seconds_with_embedding", "per_label"):
        assert key in figures
    assert figures["in_scope_accuracy"] > 0.8
    assert png.is_file()
    assert main(["eval", "intents", "--train", f"{data}#train+oos_train", "--test", f"{data}#test"]) == 0
    assert "macro-F1" in capsys.readouterr().out


def test_train_and_eval_sentiment(fake_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts, labels = sentiment_examples()
    data = tmp_path / "sst.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels, strict=True)))
    assert main(["train", "sentiment", str(data), "-o", str(tmp_path / "s")]) == 0
    assert "trained sentiment" in capsys.readouterr().out
    assert main(["eval", "sentiment", "--model", str(tmp_path / "s"), "--test", str(data), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["accuracy"] > 0.9 and "macro_f1" in figures
    assert main(["eval", "sentiment", "--train", str(data), "--test", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.9


def test_train_sentiment_with_neutral_data(fake_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts, labels = sentiment_examples()
    polar = tmp_path / "sst.tsv"
    polar.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels, strict=True)))
    requests = {"train": [[f"{w} tuesday at noon", "schedule"] for w in ("arrived", "opens", "ships", "closes")]
                + [["thanks a lot, wonderful", "thank_you"]]}
    clinc = tmp_path / "clinc.json"
    clinc.write_text(json.dumps(requests))
    assert main(["train", "sentiment", str(polar), "--neutral", f"{clinc}#train", "--neutral-drop", "thank_you",
                 "-o", str(tmp_path / "s"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] == ["negative", "neutral", "positive"]
    assert summary["examples"] == len(texts) + 4


@pytest.mark.parametrize("content,message", [
    ("", "is empty"),
    ("text,label\na,x\nb,x\n", "only one label"),
    ("utterance,label\na,x\nb,y\n", "text column"),
])
def test_bad_data_is_a_clear_error(fake_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["train", "intents", str(path), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_unknown_split_from_the_cli(fake_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _splits(tmp_path)
    assert main(["eval", "intents", "--train", f"{data}#train", "--test", f"{data}#dev"]) == 2
    assert "no split 'dev'" in capsys.readouterr().err
