"""The shipped heads with the real embedder: the issue's "done when" examples."""

from __future__ import annotations

import numpy as np
import pytest

from agent.understand import UnderstandConfig, build_understanding

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def stage():
    from agent.models.embedder import SentenceEmbedder

    return build_understanding(UnderstandConfig(), SentenceEmbedder())


def analyze(stage, text: str, prior=()):
    return stage.analyze(text, stage.embedder.encode([text])[0], list(prior))


def test_request_for_a_human_hands_off(stage) -> None:
    out = analyze(stage, "I want to talk to a real person")
    assert out.intent.label == "human_request"
    assert out.handoff is True


def test_furious_customer_is_negative(stage) -> None:
    out = analyze(stage, "this is the third time your app lost my order, I'm furious")
    assert out.sentiment.label == "negative"
    assert out.sentiment.score < -0.5
    assert out.intent.label == "complaint"


def test_greeting(stage) -> None:
    out = analyze(stage, "hi there")
    assert out.intent.label == "greeting"
    assert out.handoff is False


def test_routing_intents_and_out_of_scope(stage) -> None:
    assert analyze(stage, "write a python function that reverses a linked list").intent.label == "code_request"
    assert analyze(stage, "please summarize the report I pasted above").intent.label == "summarize_request"
    assert analyze(stage, "thanks a million, that fixed it").sentiment.label == "positive"
    assert analyze(stage, "turn on the kitchen lights").intent.label == "out_of_scope"


def test_repeated_anger_escalates(stage) -> None:
    text = "your support is useless and I'm sick of waiting, this is a disgrace"
    first = analyze(stage, text)
    second = analyze(stage, text, [first.sentiment.score])
    assert second.frustration >= 0.5 and second.handoff is True


def test_plain_questions_are_not_frustration(stage) -> None:
    # The support example: one annoyed message, then an information question about the same
    # topic. The question must not push frustration past the handoff threshold.
    angry = analyze(stage, "Where is my order 1234? It is late and I am really annoyed!")
    assert angry.sentiment.label == "negative"
    question = analyze(stage, "What happens if my parcel is late?", [angry.sentiment.score])
    assert question.sentiment.score > -0.35, question.sentiment
    assert question.frustration < 0.5 and question.handoff is False
    for text in ("how long does shipping take to Belgium?", "What do you remember about me?",
                 "Write a function that reverses a string", "can you explain what a hash map is?"):
        assert analyze(stage, text).sentiment.label == "neutral", text
    blunt = analyze(stage, "This is useless. Let me talk to a person.", [angry.sentiment.score,
                                                                          question.sentiment.score])
    assert blunt.sentiment.label == "negative" and blunt.handoff is True


def test_the_turn_embedding_is_what_sentence_transformers_gives(stage) -> None:
    # Memory's stored vectors came from sentence-transformers; the lean forward pass (and its
    # layer tap for the sentiment branch) must not move them.
    from sentence_transformers import SentenceTransformer

    from agent.models.embedder import default_embedder_path

    texts = ["hi there", "What happens if my parcel is late?", "the food was bland , but the service saved it",
             "naïve café — 東京", "word " * 300]
    reference = SentenceTransformer(str(default_embedder_path()), device="cpu").encode(
        texts, normalize_embeddings=True)
    assert stage.embedder.lean_encoder() is not None
    one_by_one = np.vstack([stage.embedder.encode([t]) for t in texts])
    batched = stage.embedder.encode(texts * 2)[: len(texts)]
    assert np.sum(reference * one_by_one, axis=1).min() > 0.9999
    assert np.sum(reference * batched, axis=1).min() > 0.9999


def test_the_shipped_sentiment_branch_reads_the_turns_own_pass(stage) -> None:
    branch = stage.sentiment.branch
    assert branch is not None and 1 <= branch.depth <= 3
    text = "I love this, thank you so much"
    stage.embedder.encode([text])
    assert stage.embedder.layer_states([text], branch.tap) is stage.embedder.layer_states([text], branch.tap)


def test_issue_sentiment_examples(stage) -> None:
    assert analyze(stage, "this is the third time your app lost my order, I'm furious").sentiment.label == "negative"
    assert analyze(stage, "I love this, thank you so much").sentiment.label == "positive"
    question = analyze(stage, "What happens if my parcel is late?").sentiment
    assert question.label == "neutral" or abs(question.score) < 0.35, question
