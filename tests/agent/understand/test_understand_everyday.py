"""The shipped sentiment model with the real embedder on everyday customer text (issue 15):
plainly angry or happy messages are polar, plain requests stay neutral, and one furious
message hands off on the first turn only when the config asks for it."""

from __future__ import annotations

import pytest

from agent.understand import UnderstandConfig, build_understanding

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def stage():
    from agent.models.embedder import SentenceEmbedder

    return build_understanding(UnderstandConfig(), SentenceEmbedder())


def sentiment(stage, text: str):
    return stage.analyze(text, stage.embedder.encode([text])[0], [])


def test_angry_and_happy_customers_are_polar(stage) -> None:
    for text in ("My card was charged twice, I am really angry, I want a refund", "ugh, you're useless"):
        assert sentiment(stage, text).sentiment.label == "negative", text
    for text in ("I love this app", "the delivery was fast and the product works perfectly"):
        assert sentiment(stage, text).sentiment.label == "positive", text


def test_plain_requests_stay_neutral(stage) -> None:
    for text in ("I want to cancel my subscription", "can you help me reset my password?",
                 "what are your opening hours?", "What happens if my parcel is late?"):
        out = sentiment(stage, text)
        assert out.sentiment.label == "neutral", (text, out.sentiment)
        assert out.handoff is False


def test_frustration_hands_off_when_it_lasts(stage) -> None:
    furious = "this is the third time your app lost my order, I'm furious"
    first = sentiment(stage, furious)
    assert first.frustration >= 0.9
    assert first.handoff is False  # the default waits for a second annoyed turn
    second = stage.analyze("My card was charged twice, I am really angry, I want a refund",
                           None, [first.sentiment.score])
    assert second.handoff is True and second.extra["handoff_reason"] == "frustration"


def test_the_strong_rule_hands_off_one_furious_message_when_configured() -> None:
    from agent.models.embedder import SentenceEmbedder

    strict = build_understanding(UnderstandConfig(frustration_strong=0.9), SentenceEmbedder())
    out = sentiment(strict, "this is the third time your app lost my order, I'm furious")
    assert out.handoff is True and out.extra["handoff_reason"] == "strong_frustration"
    assert sentiment(strict, "What happens if my parcel is late?").handoff is False
