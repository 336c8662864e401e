"""The learned re-ranking stage of recall (memory/rerank.py, Recall.rerank)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from agent.errors import InputError
from memory import FakeEmbedder, MemoryConfig, MemoryStore
from memory.fit_rerank import fit_rows
from memory.locomo import evaluate_locomo, rerank_training_rows
from memory.records import MemoryItem
from memory.rerank import DEFAULT_WEIGHTS, FEATURES, Candidate, features, fit_logistic, rerank


def _turns() -> list[MemoryItem]:
    said = [
        ("s1", "Ben", "Hey Ana, how was your week?"),
        ("s1", "Ana", "Busy! What should I paint at the pottery class?"),
        ("s1", "Ben", "Paint something for the kitchen."),
        ("s2", "Ana", "Bye Ben, take care of the pottery!"),
        ("s2", "Ben", "See you Ana."),
        ("s3", "Ben", "Any news from the weekend?"),
        ("s3", "Ana", "I glazed a big blue vase with sunflowers at my class on Sunday, it took three hours "
                      "and my teacher loved it."),
        ("s3", "Ben", "Sounds lovely."),
    ]
    return [MemoryItem(text=f"{who}: {text}", kind="turn", session_id=session, source=f"t{n}",
                       meta={"speaker": who}) for n, (session, who, text) in enumerate(said)]


def _search(tmp_path: Path, query: str, k: int, **config: object) -> list:
    with MemoryStore(tmp_path / str(sorted(config.items())), FakeEmbedder(dim=128), MemoryConfig(**config)) as store:
        store.add_many(_turns(), user_id="u")
        return store.search(query, k=k, user_id="u")


def test_reranking_finds_the_answer_the_fused_order_misses(tmp_path: Path) -> None:
    # The fused order ranks Ana's own question and her two-word goodbye, which share the
    # query's words, above the turn that says what she made; the model knows better.
    question = "What did Ana paint at the pottery class?"
    before = [h.source for h in _search(tmp_path, question, 2, rerank=False)]
    after = [h.source for h in _search(tmp_path, question, 2)]
    assert "t6" not in before
    assert "t6" in after


def test_scores_still_fall_down_the_list(tmp_path: Path) -> None:
    hits = _search(tmp_path, "What did Ana paint at the pottery class?", 8)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert {h.source for h in hits} == {f"t{n}" for n in range(8)}


def test_documents_keep_their_places(tmp_path: Path) -> None:
    # A model that only likes long texts reorders the turns, never the document.
    weights = {"bias": 0.0, "words": 5.0}
    with MemoryStore(tmp_path / "m", FakeEmbedder(dim=128), MemoryConfig(rerank_weights=weights)) as store:
        store.add_many(_turns(), user_id="u")
        store.add("The pottery class guide: paint, glaze and fire a vase.", user_id="u", kind="document",
                  source="guide.txt")
        off = MemoryStore(tmp_path / "m", FakeEmbedder(dim=128), MemoryConfig(rerank=False))
        try:
            plain = off.search("pottery class paint vase", k=8, user_id="u")
        finally:
            off.close()
        ranked = store.search("pottery class paint vase", k=8, user_id="u")
    where = [h.kind for h in plain].index("document")
    assert ranked[where].kind == "document"
    turns = [h for h in ranked if h.kind == "turn"]
    lengths = [len(h.text.split()) for h in turns]
    assert lengths == sorted(lengths, reverse=True)


def test_memories_without_speakers_or_sessions_are_ranked(tmp_path: Path) -> None:
    # The dialogue manager's path: each user turn stored alone, no speaker, no neighbours.
    with MemoryStore(tmp_path / "dm", FakeEmbedder(dim=128), MemoryConfig()) as store:
        for text in ("my dog is called Rex", "I work as a nurse in Leeds", "I love hiking in the Alps",
                     "my sister lives in Oslo"):
            store.add(text, user_id="ann")
        hits = store.search("what is my dog called?", k=2, user_id="ann")
        x, sources = store.rerank_features("what is my dog called?", user_id="ann")
    assert hits[0].text == "my dog is called Rex"
    assert x.shape == (4, len(FEATURES)) and sources == [None] * 4
    assert not x[:, FEATURES.index("named_speaker")].any() and not x[:, FEATURES.index("other_speaker")].any()


def test_features_read_text_speakers_and_sessions() -> None:
    cands = [
        Candidate(1, "Ana: Did you go? [shares a photo: a cat]", "s1", 0.9, 0.5, 4.0, "Ana"),
        Candidate(2, "Ben: I went to the lake with my kids", "s1", 0.6, 0.3, 2.0, "Ben"),
        Candidate(3, "a note nobody said", None, 0.4, 0.2, 0.0, None),
    ]
    x = features(cands, {"Ana"})
    col = {f: x[:, n] for n, f in enumerate(FEATURES)}
    assert col["question"].tolist() == [1.0, 0.0, 0.0]  # the photo note is not the turn's end
    assert col["named_speaker"].tolist() == [1.0, 0.0, 0.0]
    assert col["other_speaker"].tolist() == [0.0, 1.0, 0.0]  # no speaker recorded: neither
    assert col["bm25"].tolist() == [1.0, 0.5, 0.0]
    assert col["session_best"].tolist() == [0.9, 0.9, 0.4]
    assert col["session_rank"].tolist() == [1.0, 0.5, 1.0]
    assert col["words"][1] == pytest.approx(np.log1p(9))


def test_logistic_fit_finds_the_signal() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, len(FEATURES)))
    y = (x[:, 2] - 0.5 * x[:, 5] + 0.3 * rng.standard_normal(4000) > 0.8).astype(float)
    w = fit_logistic(x, y, c=10.0)
    assert w["bm25"] > 3 * max(abs(w[f]) for f in FEATURES if f not in ("bm25", "question"))
    assert w["question"] < 0
    p = rerank(x, w)
    assert ((p > 0.5) == (y > 0)).mean() > 0.9


def test_the_configuration_checks_feature_names() -> None:
    assert MemoryConfig().rerank_weights == DEFAULT_WEIGHTS
    with pytest.raises(ValidationError, match="unknown re-ranking feature"):
        MemoryConfig(rerank_weights={"bias": 0.0, "colour": 1.0})


def _locomo(tmp_path: Path) -> Path:
    turns = [{"speaker": who, "dia_id": f"D1:{n + 1}", "text": text} for n, (who, text) in enumerate(
        [("Ana", "Hi Ben! What should I paint at the pottery class?"), ("Ben", "Paint a vase!"),
         ("Ana", "I glazed a big blue vase with sunflowers on Sunday, it took three hours."),
         ("Ben", "Bye Ana, see you at the pottery class!")])]
    sample = {"sample_id": "conv-y", "conversation": {"speaker_a": "Ana", "speaker_b": "Ben",
                                                      "session_1_date_time": "1:56 pm on 8 May, 2023",
                                                      "session_1": turns},
              "qa": [{"question": "What did Ana paint at the pottery class?", "answer": "a vase",
                      "evidence": ["D1:3"], "category": 4},
                     {"question": "Who said bye?", "answer": "Ben", "evidence": ["D1:4"], "category": 1}]}
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    return path


def test_training_rows_label_the_evidence(tmp_path: Path) -> None:
    rows = rerank_training_rows(_locomo(tmp_path), embedder=FakeEmbedder(dim=128), conversations=["conv-y"])
    assert [conv for conv, _, _ in rows] == ["conv-y", "conv-y"]
    for _, x, y in rows:
        assert x.shape == (4, len(FEATURES)) and y.sum() == 1.0
    weights = fit_rows(rows)
    assert set(weights) == {"bias", *FEATURES}
    with pytest.raises(InputError, match="lacks conversation"):
        rerank_training_rows(_locomo(tmp_path), embedder=FakeEmbedder(dim=128), conversations=["conv-z"])


def test_evaluation_reports_each_conversation_by_category(tmp_path: Path) -> None:
    result = evaluate_locomo(_locomo(tmp_path), embedder=FakeEmbedder(dim=128))
    split = result["per_conversation_category"]["conv-y"]
    assert split["4"]["n"] == 1 and split["1"]["name"] == "multi-hop"
    assert result["variant"]["rerank"] is True


def test_the_index_gives_back_stored_vectors(tmp_path: Path) -> None:
    from memory.vector_index import IndexParams, VectorIndex

    vecs = np.eye(4, dtype=np.float32)
    index = VectorIndex(IndexParams(dim=4, hnsw_threshold=100, hnsw_m=8, hnsw_ef_construction=16, hnsw_ef_search=16))
    index.add(np.array([10, 11, 12, 13]), vecs)
    index.remove([12])
    got = index.vectors([11, 12, 99])
    assert list(got) == [11] and got[11].tolist() == [0.0, 1.0, 0.0, 0.0]
