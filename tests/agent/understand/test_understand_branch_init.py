"""Going on training a saved sentiment branch (``fit_branch(init=...)``, ``--branch-init``),
on a tiny random BERT folder (no weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.errors import InputError
from agent.models.embedder import SentenceEmbedder
from agent.understand.branch import BRANCH_FILE, SentimentBranch
from agent.understand.branch_train import BranchSpec
from agent.understand.sentiment import SentimentClassifier
from tests.helpers.understand import build_tiny_encoder, sentiment_examples

SPEC = BranchSpec(depth=1, epochs=20, lr=1e-3, head_lr=2e-2, batch_size=8, holdout=0.0)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceEmbedder:
    return SentenceEmbedder(str(build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))), device="cpu")


@pytest.fixture(scope="module")
def first(embedder: SentenceEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = sentiment_examples(neutral=True)
    return SentimentClassifier(embedder).fit_branch(texts, labels, SPEC).save(tmp_path_factory.mktemp("first"))


def test_training_goes_on_from_the_saved_branch(embedder: SentenceEmbedder, first: Path) -> None:
    texts, labels = sentiment_examples(neutral=True)
    base = embedder.lean_encoder().layer_weights
    start = SentimentBranch.load(first / BRANCH_FILE, base=base)
    # No steps at all (learning rates 0): the result is the starting branch, linear layer included.
    still = BranchSpec(depth=1, epochs=1, lr=0.0, head_lr=0.0, batch_size=8, holdout=0.0)
    same = SentimentClassifier(embedder).fit_branch(texts, labels, still, init=first)
    assert same.branch is not None
    assert np.allclose(same.branch.weight, start.weight) and np.allclose(same.branch.bias, start.bias)
    for key, value in start.layers[0].items():
        assert np.allclose(same.branch.layers[0][key], value, atol=1e-6), key
    assert same.info["branch"]["init"]["folder"] == str(first)
    # One more epoch moves it, and keeps what it learnt.
    more = SentimentClassifier(embedder, neutral_band=0.1).fit_branch(
        texts, labels, BranchSpec(depth=1, epochs=1, lr=1e-3, head_lr=2e-2, batch_size=8, holdout=0.0), init=first)
    assert more.branch is not None and not np.allclose(more.branch.weight, start.weight)
    probe = ["the service is wonderful and excellent", "my order is terrible and broken"]
    assert [p.label for p in more.predict(embedder.encode(probe), probe)] == ["positive", "negative"]


def test_a_start_that_does_not_fit_is_refused(embedder: SentenceEmbedder, first: Path, tmp_path: Path) -> None:
    texts, labels = sentiment_examples(neutral=True)
    with pytest.raises(InputError, match="reads layer"):
        SentimentClassifier(embedder).fit_branch(texts, labels, BranchSpec(depth=2, epochs=1, holdout=0.0), init=first)
    binary, polar = sentiment_examples()
    with pytest.raises(InputError, match="predicts"):
        SentimentClassifier(embedder).fit_branch(binary, polar, SPEC, init=first)
    head_only = SentimentClassifier(embedder).fit(texts, labels).save(tmp_path / "head-only")
    with pytest.raises(InputError, match="no branch.npz"):
        SentimentClassifier(embedder).fit_branch(texts, labels, SPEC, init=head_only)
