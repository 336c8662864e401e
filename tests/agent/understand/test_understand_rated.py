"""Human-rated sentiment data (a ``valence`` column): the seeded split, polar labels,
excluding a benchmark's sentences, the polar evaluation and its command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import cmd_understand
from agent.cli.main import main
from agent.errors import InputError
from agent.models.embedder import FakeEmbedder
from agent.understand.sentiment import SentimentClassifier
from agent.understand.sentiment_data import (
    evaluate_rated,
    is_rated,
    load_rated,
    rated_part,
    sentiment_training_data,
    text_key,
)
from tests.helpers.understand import sentiment_examples

_GOOD = ["great", "wonderful", "excellent", "happy", "fantastic", "amazing", "lovely", "good"]
_BAD = ["awful", "terrible", "horrible", "angry", "furious", "broken", "bad", "hate"]
_THINGS = ["the service", "this app", "my order", "the movie", "your team", "the update", "the parcel", "the food"]


def _rated(tmp_path: Path) -> Path:
    """A VADER-style file: ``sentence<TAB>label<TAB>valence`` with polar and near-0 rows."""
    rows = []
    for i, thing in enumerate(_THINGS * 3):
        rows.append((f"{thing} {i} is {_GOOD[i % 8]} and {_GOOD[(i + 3) % 8]}", 2.0 + (i % 3) / 2))
        rows.append((f"{thing} {i} is {_BAD[i % 8]} and {_BAD[(i + 3) % 8]}", -2.0 - (i % 3) / 2))
        rows.append((f"{thing} {i} arrived on tuesday at noon", 0.1 * ((i % 3) - 1)))
    path = tmp_path / "rated.tsv"
    path.write_text("sentence\tlabel\tvalence\n" + "".join(f"{t}\t{int(v > 0)}\t{v}\n" for t, v in rows))
    return path


def test_the_split_is_seeded_stable_and_keeps_copies_together() -> None:
    texts = [f"sentence number {i}" for i in range(2000)]
    parts = [rated_part(t) for t in texts]
    assert parts == [rated_part(t) for t in texts]  # deterministic
    assert 0.25 < parts.count("heldout") / len(parts) < 0.35
    assert rated_part("It's a charming film .") == rated_part("it 's a charming film")  # same key
    assert [rated_part(t, seed=1) for t in texts] != parts
    assert text_key("it 's a -lrb- good -rrb- film") == text_key("It's a (good) film!")


def test_parts_are_disjoint_and_cover_the_file(tmp_path: Path) -> None:
    path = _rated(tmp_path)
    assert is_rated(path) and is_rated(f"{path}#heldout") and not is_rated(tmp_path / "none.tsv")
    whole, tuning, held = load_rated(path), load_rated(f"{path}#tuning"), load_rated(f"{path}#heldout")
    assert len(tuning) + len(held) == len(whole) and set(tuning.texts).isdisjoint(held.texts)
    assert whole.labels(0.5).count("neutral") == len(whole) // 3
    assert whole.labels(5.0) == ["neutral"] * len(whole)
    with pytest.raises(InputError, match="tuning or FILE#heldout"):
        load_rated(f"{path}#test")
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\n")
    with pytest.raises(InputError, match="valence"):
        load_rated(bad)


def test_training_data_labels_rated_rows_and_excludes_a_benchmark(tmp_path: Path) -> None:
    path = _rated(tmp_path)
    dev = tmp_path / "dev.tsv"
    first = load_rated(path).texts[0]
    dev.write_text(f"sentence\tlabel\n{first.upper()} .\t1\n")
    data = sentiment_training_data([f"{path}#tuning"], exclude=[str(dev)], rated_neutral=0.5)
    tuning = load_rated(f"{path}#tuning")
    assert set(data.labels) == {"negative", "neutral", "positive"}
    assert first not in data.texts
    assert len(data) == len(tuning) - (first in tuning.texts)
    polar_only = sentiment_training_data([f"{path}#tuning"])  # by default the sentences rated near 0 stay out
    assert set(polar_only.labels) == {"negative", "positive"}
    assert len(polar_only) == sum(abs(v) >= 0.5 for v in tuning.valences)
    assert len(sentiment_training_data([f"{path}#tuning"], rated_neutral=0.05)) < len(data)  # 0.05..0.5 left out


def test_polar_evaluation_counts_neutral_as_wrong(tmp_path: Path) -> None:
    clf = SentimentClassifier(FakeEmbedder(), neutral_band=0.0).fit(*sentiment_examples(neutral=True))
    rated = load_rated(_rated(tmp_path))
    report = evaluate_rated(clf, rated, FakeEmbedder())
    extra = report.extra
    assert report.n == extra["polar_rows"] == 2 * len(rated) // 3
    assert extra["near_neutral_rows"] == len(rated) // 3
    assert report.accuracy > 0.8 and extra["polar_sign_accuracy"] >= report.accuracy - 1e-9
    clf.neutral_band = 0.9999  # everything neutral: no polar sentence is right
    silent = evaluate_rated(clf, rated, FakeEmbedder())
    assert silent.accuracy == 0.0 and silent.extra["polar_called_neutral"] == silent.n
    assert silent.extra["near_neutral_called_neutral"] == len(rated) // 3


def test_eval_and_train_commands_read_rated_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cmd_understand, "_embedder", lambda name: FakeEmbedder())
    path = _rated(tmp_path)
    model = tmp_path / "model"
    assert main(["train", "sentiment", f"{path}#tuning", "--rated-neutral", "0.5", "-o", str(model), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["counts"]) == {"negative", "neutral", "positive"}
    assert main(["eval", "sentiment", "--model", str(model), "--test", f"{path}#heldout", f"{path}#heldout",
                 "--polar", "1.0", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    held = load_rated(f"{path}#heldout")
    assert figures["polar_rows"] == 2 * sum(abs(v) >= 1.0 for v in held.valences)
    assert {"accuracy", "polar_called_neutral", "polar_sign_accuracy", "near_neutral_called_neutral"} <= set(figures)
    assert main(["eval", "sentiment", "--model", str(model), "--test", str(path), "--exclude", f"{path}#heldout",
                 "--json"]) == 0
    tuning = load_rated(f"{path}#tuning")
    assert json.loads(capsys.readouterr().out)["near_neutral_rows"] == sum(abs(v) < 0.5 for v in tuning.valences)
    assert main(["eval", "sentiment", "--model", str(model), "--test", f"{path}#heldout",
                 "--exclude", f"{path}#heldout"]) != 0  # nothing left to evaluate
    assert "no sentence left" in capsys.readouterr().err
    assert main(["eval", "sentiment", "--model", str(model), "--test", str(path)]) == 0
    assert "labelled neutral" in capsys.readouterr().out
