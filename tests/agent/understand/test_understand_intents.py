"""The intent classifier on a fake embedder: fit, out-of-scope, save/load, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.errors import ConfigError, InputError
from agent.models.embedder import FakeEmbedder
from agent.understand.intents import IntentClassifier
from tests.helpers.understand import intent_examples

IN_SCOPE = ("rain tomorrow forecast", "sunny weather today", "guitar song playlist", "play the album loud",
            "pizza dinner recipe", "cook pasta soup")
UNRELATED = ("zebra quantum violin", "mortgage insurance paperwork", "xylophone nebula", "tax form deadline",
             "quarterly earnings report", "dentist appointment reminder", "parking ticket appeal",
             "chess opening theory")


@pytest.fixture(scope="module")
def trained() -> IntentClassifier:
    texts, labels = intent_examples()
    return IntentClassifier(FakeEmbedder()).fit(texts, labels)


def classify(clf: IntentClassifier, *texts: str) -> list[str]:
    return [p.label for p in clf.predict(clf.embedder.encode(list(texts)), texts)]


def test_predicts_the_trained_intents(trained: IntentClassifier) -> None:
    assert classify(trained, *IN_SCOPE) == ["weather", "weather", "music", "music", "food", "food"]
    assert trained.labels == ["food", "music", "weather"]
    pred = trained.predict(trained.embedder.encode(["snow forecast today"]), ["snow forecast today"])[0]
    assert 0.0 <= pred.score <= 1.0
    assert pred.alternatives[0][0] == "weather"
    assert {"confidence", "oos_score", "similarity"} <= set(pred.extra)


def test_unrelated_text_is_out_of_scope(trained: IntentClassifier) -> None:
    assert trained.oos_label == "out_of_scope"
    # The fake embedder hashes words, so an unseen word can collide with a topic word:
    # most unrelated texts, not all, are turned away.
    labels = classify(trained, *UNRELATED)
    assert labels.count("out_of_scope") >= 5


def test_threshold_override(trained: IntentClassifier) -> None:
    texts = ["rain tomorrow forecast"]
    vectors = trained.embedder.encode(texts)
    trained.threshold_override = 1.0
    try:
        assert trained.predict(vectors, texts)[0].label == "out_of_scope"
    finally:
        trained.threshold_override = None
    assert trained.predict(vectors, texts)[0].label == "weather"


def test_explicit_oos_class_is_learnt_and_named() -> None:
    texts, labels = intent_examples()
    texts += ["zebra quantum violin", "mortgage insurance paperwork", "xylophone nebula", "tax form deadline"] * 3
    labels += ["oos"] * 12
    clf = IntentClassifier(FakeEmbedder()).fit(texts, labels)
    assert clf.oos_label == "oos"
    assert clf.info["oos_class_in_data"] is True
    assert classify(clf, "mortgage insurance paperwork")[0] == "oos"


def test_save_load_round_trip(trained: IntentClassifier, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "intents")
    assert sorted(p.name for p in folder.iterdir()) == ["centroids.npz", "head.npz", "meta.json"]
    with np.load(folder / "head.npz", allow_pickle=False) as data:  # no pickled objects inside
        assert "w0" in data
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kind"] == "intents" and meta["dim"] == 64 and meta["embedder"] == "fake"
    loaded = IntentClassifier.load(folder, FakeEmbedder())
    texts = [*IN_SCOPE, *UNRELATED]
    vectors = FakeEmbedder().encode(texts)
    before, after = trained.predict(vectors, texts), loaded.predict(vectors, texts)
    assert [p.label for p in before] == [p.label for p in after]
    # the word-feature table is stored as float16
    assert np.allclose([p.score for p in before], [p.score for p in after], atol=1e-3)
    assert loaded.threshold == pytest.approx(trained.threshold)


def test_load_refuses_other_vector_sizes(trained: IntentClassifier, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "intents")
    with pytest.raises(ConfigError, match="64-d vectors.*retrain"):
        IntentClassifier.load(folder, FakeEmbedder(dim=32))


def test_load_of_a_folder_that_is_not_a_classifier(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="llmos train intents"):
        IntentClassifier.load(tmp_path)


def test_bad_training_data() -> None:
    clf = IntentClassifier(FakeEmbedder())
    with pytest.raises(InputError, match="only one label"):
        clf.fit(["a", "b"], ["x", "x"])
    with pytest.raises(InputError, match="2 texts but 1 labels"):
        clf.fit(["a", "b"], ["x"])
    with pytest.raises(InputError, match="no training examples"):
        clf.fit([], [])
    with pytest.raises(InputError, match="not trained"):
        clf.predict(np.zeros((1, 64), np.float32))


def test_wrong_vector_size_at_predict(trained: IntentClassifier) -> None:
    with pytest.raises(InputError, match="expected 64-d vectors"):
        trained.predict(np.zeros((1, 10), np.float32))


def test_fit_on_precomputed_vectors_needs_no_embedder() -> None:
    texts, labels = intent_examples()
    vectors = FakeEmbedder().encode(texts)
    clf = IntentClassifier().fit(texts, labels, vectors=vectors)
    assert clf.predict(vectors[:1], texts[:1])[0].label == labels[0]
    with pytest.raises(ConfigError, match="needs an embedder"):
        IntentClassifier().fit(texts, labels)
