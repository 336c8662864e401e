"""Hashed word n-gram features and heads that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.errors import InputError
from agent.models.embedder import FakeEmbedder
from agent.understand.head import Head, HeadSpec, train_head
from agent.understand.intents import IntentClassifier, IntentTraining
from agent.understand.lexical import HashedNgrams, tokenize
from tests.helpers.understand import intent_examples


def test_tokenize_unifies_negation_spellings() -> None:
    assert tokenize("It doesn't work") == ["it", "does", "not", "work"]
    assert tokenize("it does n't work") == ["it", "does", "not", "work"]  # SST-2's tokenisation
    assert tokenize("") == []


def test_features_are_stable_and_unit_length() -> None:
    grams = HashedNgrams(buckets=1024)
    index, weight = grams.features("good good movie")
    again, _ = grams.features("good good movie")
    assert np.array_equal(np.sort(index), np.sort(again))  # CRC32: same buckets in every process
    assert len(index) == 4  # good, movie, "good good", "good movie"
    assert np.linalg.norm(weight) == pytest.approx(1.0)
    assert index.max() < 1024
    empty = grams.features("!!!")
    assert len(empty[0]) == 0
    batch = grams.batch(["a b", "!!!", "c"])
    assert [len(i) for i, _ in batch.rows()] == [0 if not tokenize(t) else len(grams.features(t)[0])
                                                 for t in ["a b", "!!!", "c"]]


def test_head_with_word_features_round_trip(tmp_path: Path) -> None:
    texts, labels = intent_examples()
    vectors = FakeEmbedder().encode(texts)
    targets = np.searchsorted(sorted(set(labels)), labels)
    head = train_head(vectors, targets, 3, HeadSpec(epochs=30, lr=2e-2, lexical_buckets=512), texts=texts)
    assert head.uses_text and head.lexical is not None and head.lexical.shape == (512, 3)
    assert (head.proba(vectors, texts).argmax(1) == targets).mean() > 0.95
    head.save(tmp_path / "h.npz")
    loaded = Head.load(tmp_path / "h.npz")
    assert np.allclose(loaded.logits(vectors, texts), head.logits(vectors, texts), atol=1e-2)  # float16 table
    with pytest.raises(ValueError, match="pass the texts"):
        head.logits(vectors)


def test_intent_classifier_with_word_features_needs_texts() -> None:
    texts, labels = intent_examples()
    clf = IntentClassifier(FakeEmbedder(), training=IntentTraining(spec=HeadSpec(lexical_buckets=512)))
    clf.fit(texts, labels)
    assert clf.uses_text
    vectors = FakeEmbedder().encode(["rain tomorrow forecast"])
    assert clf.predict(vectors, ["rain tomorrow forecast"])[0].label == "weather"
    with pytest.raises(InputError, match="reads the words"):
        clf.predict(vectors)
