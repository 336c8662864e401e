"""build_understanding with a fake embedder: the stage's output, handoff, custom intents."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.models.embedder import FakeEmbedder
from agent.turn import Understanding
from agent.understand import IntentClassifier, SentimentClassifier, UnderstandConfig, build_understanding
from tests.helpers.understand import intent_examples, sentiment_examples

HUMAN = ["talk to a human agent", "real person please", "connect me to a human", "human agent now",
         "speak with a real person", "get me a person", "a human please", "person not a bot"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def heads() -> tuple[IntentClassifier, SentimentClassifier]:
    texts, labels = intent_examples()
    texts += HUMAN
    labels += ["human_request"] * len(HUMAN)
    intents = IntentClassifier(FakeEmbedder()).fit(texts, labels)
    sentiment = SentimentClassifier(FakeEmbedder()).fit(*sentiment_examples())
    return intents, sentiment


def test_analyze_fills_intent_sentiment_frustration(heads) -> None:
    intents, sentiment = heads
    embedder = FakeEmbedder()
    stage = build_understanding(UnderstandConfig(), embedder, intents=intents, sentiment=sentiment)
    assert isinstance(stage, Understanding)
    text = "rain tomorrow forecast"
    vector = embedder.encode([text])[0]
    out = stage.analyze(text, vector, [])
    assert out.intent is not None and out.intent.label == "weather"
    # the sentiment head's own reading of the turn
    expected = sentiment.predict(vector.reshape(1, -1), [text])[0]
    assert out.sentiment is not None
    assert (out.sentiment.label, out.sentiment.score) == (expected.label, round(expected.score, 4))
    # a first turn's frustration: how negative it is, once past the neutral band
    negative = expected.score <= -UnderstandConfig().neutral_band
    assert out.frustration == (round(-expected.score, 4) if negative else 0.0)
    assert out.handoff is False
    assert out.extra["intent_alternatives"][0]["label"] == "weather"
    # Without a vector the stage embeds the text itself.
    assert stage.analyze(text, None, []).intent.label == "weather"


def test_human_request_hands_off(heads) -> None:
    intents, sentiment = heads
    embedder = FakeEmbedder()
    stage = build_understanding(UnderstandConfig(), embedder, intents=intents, sentiment=sentiment)
    out = stage.analyze("connect me to a real human person", None, [])
    assert out.intent.label == "human_request"
    assert out.handoff is True and out.extra["handoff_reason"] == "intent"


def test_sustained_frustration_hands_off(heads) -> None:
    intents, sentiment = heads
    # frustration_strong=None: only the sustained rule (one strong message: test_understand_handoff.py)
    stage = build_understanding(UnderstandConfig(frustration_threshold=0.5, frustration_strong=None), FakeEmbedder(),
                                intents=intents, sentiment=sentiment)
    angry = "my order is terrible and broken, awful"
    first = stage.analyze(angry, None, [])
    assert first.sentiment.label == "negative"
    assert first.handoff is False  # one message is not enough (frustration_min_turns=2)
    second = stage.analyze(angry, None, [first.sentiment.score])
    assert second.frustration >= 0.5
    assert second.handoff is True and second.extra["handoff_reason"] == "frustration"
    calm = stage.analyze(angry, None, [0.9, 0.9, 0.9, 0.9])
    assert calm.frustration < second.frustration


def test_disabled_stage_passes_the_vector_through() -> None:
    stage = build_understanding(UnderstandConfig(enabled=False), FakeEmbedder())
    out = stage.analyze("hi", [0.0, 1.0], [])
    assert out.intent is None and out.sentiment is None and out.vector == [0.0, 1.0]


def test_shipped_intents_retrain_for_another_embedder(caplog: pytest.LogCaptureFixture) -> None:
    # The shipped head is for MiniLM's 384-d vectors; a 64-d embedder gets a head trained
    # at start-up on the shipped examples, and no sentiment (nothing shipped to retrain on).
    stage = build_understanding(UnderstandConfig(), FakeEmbedder())
    assert stage.sentiment is None
    assert "human_request" in stage.intents.labels and "out_of_scope" in stage.intents.labels
    out = stage.analyze("I want to speak to a human agent", None, [])
    assert out.intent.label == "human_request" and out.handoff is True
    assert out.sentiment is None and out.frustration is None


def test_config_adds_and_drops_intents() -> None:
    cfg = UnderstandConfig(
        intent_examples={"refund_request": ["I want a refund", "refund my money", "give me my money back",
                                            "refund please", "how do I get a refund", "money back refund",
                                            "return it for a refund", "refund the payment"]},
        drop_intents=["code_request"], routes={"refund_request": "refunds"})
    stage = build_understanding(cfg, FakeEmbedder())
    assert "refund_request" in stage.intents.labels
    assert "code_request" not in stage.intents.labels
    assert stage.analyze("refund my money please", None, []).intent.label == "refund_request"
    # The second build finds the head in the cache instead of retraining.
    again = build_understanding(cfg, FakeEmbedder())
    assert again.intents.threshold == pytest.approx(stage.intents.threshold)


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown intents"):
        build_understanding(UnderstandConfig(drop_intents=["nope"]), FakeEmbedder())
    with pytest.raises(ConfigError, match="llmos train intents"):
        build_understanding(UnderstandConfig(intents_model=str(tmp_path)), FakeEmbedder())


def test_oos_threshold_override(heads) -> None:
    intents, sentiment = heads
    stage = build_understanding(UnderstandConfig(oos_threshold=1.0, oos_label="none"), FakeEmbedder(),
                                intents=intents, sentiment=sentiment)
    assert stage.analyze("rain tomorrow forecast", None, []).intent.label == "none"
    intents.threshold_override = None


def test_bench_reports_both_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools
    from types import SimpleNamespace

    import torch

    from agent.understand import bench
    from agent.understand.bench import bench_classify

    # a clock whose every reading is 1 ms after the last (the CPU clock: 0.25 ms): a turn reads
    # it at its start, after the embedding and at its end, so it takes 2 ms, the heads 1 ms
    wall, cpu = itertools.count(), itertools.count()
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: next(wall) / 1000,
                                                       thread_time=lambda: next(cpu) / 4000))
    threads = torch.get_num_threads()
    figures = bench_classify(n=4, embedder=FakeEmbedder(dim=384), warmup=1)
    assert figures["n"] == 4 and figures["torch_threads"] == threads and torch.get_num_threads() == threads
    assert figures["p50_ms"] == figures["p95_ms"] == figures["p50_ms_1_thread"] == figures["p95_ms_1_thread"] == 2.0
    assert figures["heads_p50_ms"] == figures["heads_p95_ms"] == 1.0
    assert figures["cpu_ms_p50_1_thread"] == 0.25
    assert (next(wall), next(cpu)) == (2 * 3 * 5, 2 * 2 * 5)  # 5 turns (1 warm-up) with each setting
