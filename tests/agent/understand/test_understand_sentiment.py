"""The sentiment classifier on a fake embedder: signed scores, neutral band, errors, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.errors import ConfigError, InputError
from agent.models.embedder import FakeEmbedder
from agent.understand.sentiment import SentimentClassifier, normalize_sentiment_label
from tests.helpers.understand import sentiment_examples


@pytest.fixture(scope="module")
def trained() -> SentimentClassifier:
    texts, labels = sentiment_examples()
    return SentimentClassifier(FakeEmbedder(), neutral_band=0.2).fit(texts, labels)


def test_sst2_labels_become_polarities(trained: SentimentClassifier) -> None:
    assert trained.labels == ["negative", "positive"]
    assert [normalize_sentiment_label(x) for x in ("0", "1", "NEG", "positive", "neutral")] == [
        "negative", "positive", "negative", "positive", "neutral"]


def test_signed_scores_and_labels(trained: SentimentClassifier) -> None:
    texts = ["the service is wonderful and excellent", "my order is terrible and broken"]
    vectors = FakeEmbedder().encode(texts)
    good, bad = trained.predict(vectors, texts)
    assert good.label == "positive" and good.score > 0.2
    assert bad.label == "negative" and bad.score < -0.2
    assert -1.0 <= bad.score <= good.score <= 1.0
    assert np.allclose(trained.scores(vectors, texts), [good.score, bad.score])


def test_neutral_band(trained: SentimentClassifier) -> None:
    texts = ["the service is wonderful and excellent"]
    vectors = FakeEmbedder().encode(texts)
    trained.neutral_band = 0.999
    try:
        assert trained.predict(vectors, texts)[0].label == "neutral"
    finally:
        trained.neutral_band = 0.2
    with pytest.raises(InputError, match="neutral_band"):
        SentimentClassifier(neutral_band=1.5)


def test_three_class_data() -> None:
    texts, labels = sentiment_examples(neutral=True)
    clf = SentimentClassifier(FakeEmbedder(), neutral_band=0.0).fit(texts, labels)
    assert clf.labels == ["negative", "neutral", "positive"]
    texts = ["this app arrived on tuesday at noon"]
    pred = clf.predict(FakeEmbedder().encode(texts), texts)[0]
    assert pred.label == "neutral"


def test_round_trip(trained: SentimentClassifier, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "sentiment")
    loaded = SentimentClassifier.load(folder, FakeEmbedder(), neutral_band=0.2)
    texts = ["great and happy", "awful and angry", "the movie is here"]
    vectors = FakeEmbedder().encode(texts)
    assert np.allclose(loaded.scores(vectors, texts), trained.scores(vectors, texts), atol=1e-3)
    assert [p.label for p in loaded.predict(vectors, texts)] == [p.label for p in trained.predict(vectors, texts)]
    with pytest.raises(ConfigError, match="retrain"):
        SentimentClassifier.load(folder, FakeEmbedder(dim=16))
    with pytest.raises(ConfigError, match="'sentiment' classifier, not 'intents'"):
        from agent.understand.intents import IntentClassifier

        IntentClassifier.load(folder)


def test_bad_data() -> None:
    clf = SentimentClassifier(FakeEmbedder())
    with pytest.raises(InputError, match="unknown sentiment label 'meh'"):
        clf.fit(["a", "b"], ["meh", "1"])
    with pytest.raises(InputError, match="both negative and positive"):
        clf.fit(["a", "b"], ["1", "1"])
    with pytest.raises(InputError, match="not trained"):
        clf.predict(np.zeros((1, 64), np.float32))
