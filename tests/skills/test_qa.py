"""Question answering: extraction, grounding, retrieval threshold, citations, SQuAD metrics."""

from __future__ import annotations

import json

import pytest

from skills.config import QAConfig, SkillsConfig
from skills.qa.extract import answer_type, best_span, ground
from skills.qa.retrieve import Passage, crop, passage_budget


def _p(text: str, n: int = 0) -> Passage:
    return Passage(n, text, "document", "doc.md", "doc.md", 0.9, 1.0)


@pytest.mark.parametrize(("question", "kind"), [("How many players are on a team?", "number"),
                                                ("When was the bridge built?", "date"),
                                                ("Who founded the company?", "person"),
                                                ("Where is the warehouse?", "place"),
                                                ("What colour is the logo?", "thing"),
                                                ("Which company bought the mill?", "named"),
                                                ("What is the name of the ship?", "named")])
def test_answer_types(question, kind):
    assert answer_type(question) == kind


def test_extractive_span_matches_answer_type():
    passages = ["The company was founded in 1998 by Larry Page and Sergey Brin. It is based in Mountain View.",
                "Express shipping costs 12 euros and arrives the next day."]
    assert "1998" in best_span("When was the company founded?", passages).text
    assert "Larry Page" in best_span("Who founded the company?", passages).text
    span = best_span("How much does express shipping cost?", passages)
    assert span.passage == 1 and "12" in span.text


def test_extractive_span_prefers_phrases_near_the_question_words():
    passage = ["The mill published its first catalogue in 1902, and it completed the new dam on the river in 1911, "
               "when the whole valley was flooded."]
    assert best_span("When was the new dam completed?", passage).text == "1911"
    # a verb next to the question words is not an answer; the noun phrase is
    passage = ["In the spring the ferry company became a subsidiary of Northern Lines after a long dispute."]
    assert best_span("Which company owns the ferry company?", passage).text == "Northern Lines"
    # the phrase after a verb counts as a whole phrase: the city, not the country after the comma
    passage = ["Our returns warehouse is located in Rotterdam, in the Netherlands."]
    assert best_span("Where is the returns warehouse?", passage).text == "Rotterdam"


def test_ground_finds_the_supporting_span():
    passages = ["Denver Broncos defeated the Carolina Panthers 24-10 to earn their third Super Bowl title."]
    span = ground("the Denver Broncos.", passages)
    assert span.text == "Denver Broncos"
    assert ground("Green Bay Packers", passages) is None


def test_passage_budget_by_model_size():
    cfg = QAConfig()
    assert passage_budget(135_000_000, cfg)[0] == 1
    assert passage_budget(1_700_000_000, cfg)[0] == 2
    assert passage_budget(None, cfg)[0] == 4
    assert passage_budget(135_000_000, QAConfig(max_passages=3))[0] == 3


def test_crop_keeps_the_sentences_around_the_answer():
    filler = " ".join(f"Sentence number {i} talks about nothing at all." for i in range(40))
    text = f"{filler} The warehouse is located in Rotterdam. {filler}"
    cropped = crop(text, "Where is the warehouse located?", 30, lambda t: len(t.split()))
    assert "Rotterdam" in cropped and len(cropped.split()) <= 30


def test_qa_skill_answers_with_citation(kb, request_for):
    from skills.qa.skill import QASkill

    skill = QASkill(SkillsConfig(qa={"mode": "extractive", "min_similarity": 0.2}))
    req = request_for("Where is the warehouse located?", memory=kb)
    text = "".join(skill.run(req))
    assert "Rotterdam" in text and "[1]" in text
    assert "Sources:\n[1] guide.md (part" in text
    assert req.sources and req.sources[0].source == "guide.md"
    assert req.extra["qa"]["abstained"] is False


def test_extractive_mode_reads_several_passages_and_cites_the_one_quoted(request_for):
    from types import SimpleNamespace

    from skills.qa.skill import QASkill

    def hit(n: int, text: str, sim: float) -> SimpleNamespace:
        return SimpleNamespace(id=n, text=text, kind="document", source=f"doc{n}.md", citation=f"doc{n}.md",
                               similarity=sim, score=sim)

    class Memory:  # the retrieval order is fixed: the answer is in the second passage
        def search(self, *args, **kwargs):
            return [hit(1, "The ferry crosses the fjord twice a day in summer.", 0.8),
                    hit(2, "The ferry was built in 1987 at the Ulstein shipyard.", 0.7)]

    req = request_for("When was the ferry built?", memory=Memory())
    text = "".join(QASkill(SkillsConfig(qa={"mode": "extractive"})).run(req))
    assert text.startswith("1987") and "[1] doc2.md" in text
    one = QASkill(SkillsConfig(qa={"mode": "extractive", "extractive_passages": 1}))
    assert "1987" not in "".join(one.run(request_for("When was the ferry built?", memory=Memory())))


def test_qa_skill_combined_grounds_the_model_answer(kb, request_for):
    from skills.qa.skill import QASkill

    skill = QASkill(SkillsConfig(qa={"mode": "combined", "min_similarity": 0.2}))
    req = request_for("How long does standard shipping take?", memory=kb, replies=["It takes 3 to 5 business days."])
    text = "".join(skill.run(req))
    assert text.startswith("3 to 5 business days") and req.extra["qa"]["answered_by"] == "grounded"
    # an invented answer is not repeated: the extractive span is used instead
    req = request_for("How long does standard shipping take?", memory=kb, replies=["About two weeks by boat."])
    text = "".join(skill.run(req))
    assert "two weeks" not in text and req.extra["qa"]["answered_by"] == "extractive"


def test_qa_skill_says_it_does_not_know(kb, request_for):
    from skills.qa.skill import NO_ANSWER, QASkill

    skill = QASkill(SkillsConfig(qa={"min_similarity": 0.5}))
    req = request_for("Which volcano erupted in Iceland during 2010?", memory=kb)
    assert "".join(skill.run(req)) == NO_ANSWER and req.extra["qa"]["abstained"] and not req.sources


def test_qa_through_the_agent(kb, fake_agent):
    from skills import SkillsConfig, load_skills

    agent, _ = fake_agent(["3 to 5 business days"])
    agent.memory = kb
    agent.skills = load_skills(SkillsConfig(qa={"min_similarity": 0.2}))
    reply = agent.chat("/qa How long does standard shipping take?")
    assert reply.skill == "qa" and "[1]" in reply.text
    assert any(m.source == "guide.md" for m in reply.memories)


def test_squad_metrics_follow_the_official_normalisation():
    from skills.evals.squad import exact_match, f1_score, normalize_answer

    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert f1_score("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    assert f1_score("", "Denver") == 0.0


def test_squad_harness_on_a_tiny_file(tmp_path):
    from agent.backends import FakeBackend
    from memory import FakeEmbedder
    from skills.evals.squad import exact_match, f1_score, run_squad

    def article(title, context, qas):
        return {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": f"{title}{i}", "question": q, "answers": [{"text": a, "answer_start": context.find(a)}]}
            for i, (q, a) in enumerate(qas)]}]}

    data = {"version": "1.1", "data": [
        article("Bridges", "The Golden Gate Bridge was opened in 1937 in San Francisco.",
                [("When was the Golden Gate Bridge opened?", "1937")]),
        article("Rivers", "The Nile is the longest river in Africa, flowing through Egypt.",
                [("Which river is the longest in Africa?", "The Nile")]),
        article("Cats", "Cats sleep for about 15 hours a day.", [("How many hours do cats sleep a day?", "15")]),
    ]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    backend = FakeBackend(["1937", "the Nile", "15"] * 3)
    r = run_squad(path, backend=backend, embedder=FakeEmbedder(dim=128), limit=None, holdout_articles=1,
                  config=QAConfig(min_similarity=0.0))
    assert r["questions"] == 2 and r["held_out_questions"] == 1
    assert r["extractive_on_gold_paragraph"]["f1"] > 0
    assert {"extractive", "generative", "combined", "retrieval", "abstention"} <= set(r)
    # each mode's figures are its per-question scores (both questions are in the examples), averaged
    assert [e["gold"] for e in r["examples"]] == ["15", "1937"]
    for mode in ("extractive", "generative", "combined"):
        rows = [(e[mode], e["gold"]) for e in r["examples"]]
        assert r[mode] == {"exact_match": round(100 * sum(exact_match(p, g) for p, g in rows) / 2, 2),
                           "f1": round(100 * sum(f1_score(p, g) for p, g in rows) / 2, 2)}, mode
    # the extractive answers come from the passages: "15" exactly, the bridge's date within a span
    assert r["extractive"]["exact_match"] == 50.0 and r["examples"][1]["extractive"].startswith("1937")
    fast = run_squad(path, backend=FakeBackend(), embedder=FakeEmbedder(dim=128), limit=None, holdout_articles=1,
                     generate=False)
    assert "extractive" in fast and "generative" not in fast


def test_auto_mode_picks_extractive_for_small_local_models():
    from skills.qa.skill import resolve_mode

    assert resolve_mode("auto", 135_000_000) == "extractive"
    assert resolve_mode("auto", 494_000_000) == "combined"  # the 0.5B rung: F1 18.9 -> 39.2 (docs/models.md)
    assert resolve_mode("auto", 7_000_000_000) == "combined" and resolve_mode("auto", None) == "combined"
    assert resolve_mode("generative", 135_000_000) == "generative"
