"""The LoCoMo evaluator on a tiny hand-made file in LoCoMo's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import InputError
from memory import FakeEmbedder
from memory.answer_f1 import normalize_answer, token_f1
from memory.locomo import ABLATION, evaluate_locomo, run_ablation
from tests.helpers.documents import locomo_sample


def test_evaluate_reports_recall_per_category(tmp_path: Path) -> None:
    result = evaluate_locomo(locomo_sample(tmp_path), embedder=FakeEmbedder(dim=128))
    assert set(result) >= {"recall@5", "recall@10", "per_category"}
    assert result["n"] == 3  # category 5 has no evidence to find
    assert result["recall@10"] == 1.0  # 5 turns: all are within the top 10
    assert result["per_category"]["4"]["n"] == 1 and result["per_category"]["3"]["n"] == 0
    assert result["per_category"]["1"]["name"] == "multi-hop"
    assert result["per_conversation"] == {"conv-x": {"n": 3, "recall@5": 1.0, "recall@10": 1.0}}


def test_answering_is_scored_with_token_f1(tmp_path: Path) -> None:
    def answer(question: str, hits: list) -> str:
        return "Pixel" if "dog" in question else "no idea"

    result = evaluate_locomo(locomo_sample(tmp_path), embedder=FakeEmbedder(dim=128), answer=answer)
    assert result["per_category"]["4"]["f1"] == 1.0 and result["per_category"]["1"]["f1"] == 0.0


def test_ablation_runs_every_variant(tmp_path: Path) -> None:
    results = run_ablation(locomo_sample(tmp_path), embedder=FakeEmbedder(dim=128))
    assert list(results) == [v.name for v in ABLATION]


def test_a_wrong_file_says_what_is_expected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "locomo"}')
    with pytest.raises(InputError, match="LoCoMo format"):
        evaluate_locomo(bad, embedder=FakeEmbedder())
    with pytest.raises(InputError, match="cannot read"):
        evaluate_locomo(tmp_path / "missing.json", embedder=FakeEmbedder())


def test_token_f1_follows_locomo() -> None:
    assert normalize_answer("The Cat, and a Hat!") == "cat hat"
    assert token_f1("Pixel the greyhound", "Pixel") == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))
    assert token_f1("painting", "paintings") == 1.0
    assert token_f1("", "x") == 0.0
    assert token_f1("pottery, camping", "pottery, camping, swimming", multi_hop=True) == pytest.approx(2 / 3)


def test_turns_are_embedded_with_the_turn_before_them(tmp_path: Path, embedder) -> None:
    from memory.locomo import LocomoVariant, _turns

    sample = json.loads(locomo_sample(tmp_path).read_text())[0]
    turns = _turns(sample, LocomoVariant())
    first, second = turns[0], turns[1]
    assert first[1] == first[0].text  # the first turn of a session has no context
    assert second[0].text == "(1:56 pm on 8 May, 2023) Ben: Congrats! I started learning the cello."
    assert second[1] == second[0].text + " | Ana: I adopted a greyhound called Pixel yesterday."
    assert turns[3][1] == turns[3][0].text  # a new session starts afresh
    evaluate_locomo(locomo_sample(tmp_path), embedder=embedder)
    assert second[1] in embedder.texts and second[0].meta["speaker"] == "Ben"
    plain = _turns(sample, LocomoVariant(context_vectors=False))
    assert all(item.text == text for item, text in plain)
