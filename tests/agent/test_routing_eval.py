"""``llmos eval routing``: the routing set's sources and parts, intent scoring of the everyday
(CLINC150-style) items, and the code skill's gate on turns that name no code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import InputError
from agent.toolbox.routing_eval import CLINC_INTENTS, evaluate_routing, public_intent_examples, routing_set
from skills.code.skill import CodeSkill, names_code


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _jsonl(root / "ifeval" / "input_data.jsonl",
           [{"key": k, "prompt": f"Write a poem about the number {k}."} for k in range(4)])
    _jsonl(root / "mbpp" / "mbpp.jsonl", [{"task_id": t, "text": f"Write a function to add {t} to a number."}
                                          for t in (12, 13, 700, 701)])
    for split in ("dev", "test"):
        _jsonl(root / "dialogsum" / f"dialogsum.{split}.jsonl",
               [{"dialogue": f"#Person1#: shall we meet at noon on the {split} day?\n#Person2#: yes."}])
    articles = [{"title": city, "paragraphs": [{"context": f"{city} is the capital of {country}.",
                                                "qas": [{"question": f"What is the capital of {country}?"}]}]}
                for city, country in (("Paris", "France"), ("Rome", "Italy"))]
    (root / "squad_v1.1").mkdir(parents=True)
    (root / "squad_v1.1" / "dev-v1.1.json").write_text(json.dumps({"data": articles}), encoding="utf-8")
    clinc = {"val": [["hiya there", "greeting"], ["thanks so much for that", "thank_you"], ["book a taxi", "book_taxi"]],
             "test": [["hello friend", "greeting"], ["are you a person or a program", "are_you_a_bot"]],
             "oos_val": [["how tall is a giraffe"]], "oos_test": [["what is the tallest tree"]]}
    clinc["oos_val"] = [[t[0], "oos"] for t in clinc["oos_val"]]
    clinc["oos_test"] = [[t[0], "oos"] for t in clinc["oos_test"]]
    (root / "clinc150").mkdir()
    (root / "clinc150" / "data_full.json").write_text(json.dumps(clinc), encoding="utf-8")
    return root


def test_the_parts_come_from_disjoint_splits(data_dir: Path) -> None:
    tune, held = routing_set(data_dir, "tune"), routing_set(data_dir, "heldout")
    assert {i.source for i in held} == {"ifeval", "mbpp", "dialogsum", "squad", "clinc", "clinc_oos"}
    assert not {i.text for i in tune} & {i.text for i in held}
    clinc = [i for i in held if i.source == "clinc"]
    assert [(i.text, i.intents) for i in clinc] == [("hello friend", CLINC_INTENTS["greeting"]),
                                                    ("are you a person or a program", ("small_talk",))]
    assert all(i.expected == "chat" for i in held if i.source.startswith("clinc"))
    # CLINC intents without a counterpart among ours are left out, not guessed
    assert "book a taxi" not in {i.text for i in tune}


def test_public_intents_take_only_the_tune_part(data_dir: Path) -> None:
    examples = public_intent_examples(data_dir)
    assert examples["greeting"] == ["hiya there"] and examples["thanks"] == ["thanks so much for that"]
    shipped = {t for texts in examples.values() for t in texts}
    assert not shipped & {i.text for i in routing_set(data_dir, "heldout")}


def test_a_missing_clinc_file_says_where_to_point(data_dir: Path) -> None:
    (data_dir / "clinc150" / "data_full.json").unlink()
    with pytest.raises(InputError, match="--data-dir"):
        routing_set(data_dir, "heldout")


@pytest.mark.parametrize(("text", "expected"), [
    ("Write a function to find the minimum cost path.", True),
    ("write a python script that renames files", True),
    ("how do i write c++", True),
    ("what does `x = f()` return?", True),
    ("reverse a linked list in golang", True),
    ("how do i find the area of a circle", False),
    ("is autism a genetic disease", False),
    ("how do i get better at go", False),
    ("find engineering jobs near me", False),
])
def test_the_code_skill_takes_only_turns_that_name_code(text: str, expected: bool) -> None:
    assert names_code(text) is expected
    assert CodeSkill().accepts(text, count_tokens=len) is expected


@pytest.mark.real
def test_the_shipped_intents_read_everyday_small_talk(data_dir: Path) -> None:
    # "are you a human?" is small talk, not a request for one: it must not hand off
    result = evaluate_routing(routing_set(data_dir, "heldout"))
    assert result["per_source"]["clinc"]["intent_accuracy"] == 1.0
    assert result["per_source"]["clinc_oos"]["routes"] == {"chat": 1}
    from agent.models.embedder import SentenceEmbedder
    from agent.understand import UnderstandConfig, build_understanding

    stage = build_understanding(UnderstandConfig(), SentenceEmbedder())
    for text in ("are you a human or a computer?", "tell me if you are a real person"):
        out = stage.analyze(text, None, [])
        assert out.handoff is False, (text, out.intent)
    assert stage.analyze("let me talk to a human", None, []).handoff is True
