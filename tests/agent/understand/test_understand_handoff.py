"""Handoff on frustration: one strongly negative message escalates at once, milder
annoyance only when it lasts (``frustration_strong`` against ``frustration_threshold`` and
``frustration_min_turns``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models.embedder import FakeEmbedder
from agent.turn import Label
from agent.understand import SentimentClassifier, UnderstandConfig, build_understanding, handoff_reason
from tests.helpers.understand import sentiment_examples

CFG = UnderstandConfig(frustration_threshold=0.5, frustration_min_turns=2, frustration_strong=0.9)


def test_strong_frustration_hands_off_on_the_first_turn() -> None:
    assert handoff_reason(None, 0.999, 1, CFG) == "strong_frustration"
    assert handoff_reason(Label(label="complaint", score=0.9), 0.9, 1, CFG) == "strong_frustration"
    assert handoff_reason(None, 0.95, 4, CFG) == "strong_frustration"


def test_milder_frustration_needs_more_turns() -> None:
    assert handoff_reason(None, 0.89, 1, CFG) is None  # one blunt message
    assert handoff_reason(None, 0.6, 2, CFG) == "frustration"
    assert handoff_reason(None, 0.4, 6, CFG) is None
    assert handoff_reason(None, None, 3, CFG) is None


def test_the_intent_wins_and_null_disables_the_strong_rule() -> None:
    assert handoff_reason(Label(label="human_request", score=0.9), 0.99, 1, CFG) == "intent"
    off = UnderstandConfig(frustration_strong=None)
    assert handoff_reason(None, 1.0, 1, off) is None
    assert handoff_reason(None, 1.0, 2, off) == "frustration"
    assert handoff_reason(None, 1.0, 1, UnderstandConfig(frustration_strong=1.0)) == "strong_frustration"


def test_the_strong_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="frustration_strong"):
        UnderstandConfig(frustration_strong=0.0)
    with pytest.raises(ValueError, match="frustration_strong"):
        UnderstandConfig(frustration_strong=1.5)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOS_CACHE_DIR", str(tmp_path / "cache"))


def test_one_furious_turn_hands_off_in_the_pipeline() -> None:
    sentiment = SentimentClassifier(FakeEmbedder()).fit(*sentiment_examples())
    angry = "my order is terrible and broken, awful"
    score = sentiment.predict(FakeEmbedder().encode([angry]), [angry])[0].score
    assert score < -0.5
    strong = UnderstandConfig(frustration_strong=min(1.0, -score - 0.01))
    stage = build_understanding(strong, FakeEmbedder(), sentiment=sentiment)
    first = stage.analyze(angry, None, [])
    assert first.handoff is True and first.extra["handoff_reason"] == "strong_frustration"
    # Above the turn's negativity the first turn waits for a second one.
    lenient = UnderstandConfig(frustration_strong=None, frustration_threshold=0.5)
    stage = build_understanding(lenient, FakeEmbedder(), sentiment=sentiment)
    assert stage.analyze(angry, None, []).handoff is False
    assert stage.analyze(angry, None, [score]).extra["handoff_reason"] == "frustration"
