"""The lean encoder and the sentiment branch, on a tiny random BERT folder (no weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.models.embedder import FakeEmbedder, SentenceEmbedder
from agent.models.minilm import LAYER_KEYS, LeanBert, lean_supported
from agent.understand.branch import BRANCH_FILE, SentimentBranch
from agent.understand.branch_train import BranchSpec, TokenCache, build_token_cache, holdout_by_text
from agent.understand.sentiment import SentimentClassifier
from tests.helpers.understand import build_tiny_encoder, sentiment_examples

TEXTS = ["the service is great and happy", "my order is awful", "it", "zebra words it does not know!"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="module")
def embedder(tiny: Path) -> SentenceEmbedder:
    return SentenceEmbedder(str(tiny), device="cpu")


@pytest.fixture(scope="module")
def with_branch(embedder: SentenceEmbedder) -> SentimentClassifier:
    texts, labels = sentiment_examples(neutral=True)
    spec = BranchSpec(depth=1, epochs=25, lr=1e-3, head_lr=2e-2, batch_size=8, holdout=0.0)
    return SentimentClassifier(embedder, neutral_band=0.1).fit_branch(texts, labels, spec)


def test_lean_vectors_match_sentence_transformers(tiny: Path, embedder: SentenceEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(tiny), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert lean_supported(tiny) and embedder.lean_encoder() is not None and embedder.dim == 32
    batched = embedder.encode(TEXTS)  # padded batch
    one_by_one = np.vstack([embedder.encode([t]) for t in TEXTS])
    assert np.all(np.sum(reference * batched, axis=1) > 0.9999)
    assert np.all(np.sum(reference * one_by_one, axis=1) > 0.9999)


def test_a_kept_layer_is_handed_over_not_recomputed(tiny: Path) -> None:
    embedder = SentenceEmbedder(str(tiny), device="cpu")
    assert embedder.keep_layer(1)
    embedder.encode(["my order is awful"])
    kept = embedder.layer_states(["my order is awful"], 1)
    again = embedder.layer_states(["my order is awful"], 1)
    assert kept is again  # from the turn's own pass
    fresh = SentenceEmbedder(str(tiny), device="cpu").layer_states(["my order is awful"], 1)
    assert fresh is not None and np.allclose(fresh.states.numpy(), kept.states.numpy(), atol=1e-6)
    assert not embedder.keep_layer(7)  # the encoder has 2 layers
    other = embedder.layer_states(["x"], 1)  # not the kept turn: a pass of its own
    reference = SentenceEmbedder(str(tiny), device="cpu").layer_states(["x"], 1)
    assert other is not kept and np.allclose(other.states.numpy(), reference.states.numpy(), atol=1e-6)
    assert other.mask.tolist() == reference.mask.tolist() and other.states.shape[0] == 1


def test_int8_and_fake_embedders_have_no_tap(tiny: Path) -> None:
    assert SentenceEmbedder(str(tiny), device="cpu", int8=True).lean_encoder() is None
    assert not hasattr(FakeEmbedder(), "keep_layer")


def test_branch_round_trip(tiny: Path, tmp_path: Path) -> None:
    lean = LeanBert(tiny)
    rng = np.random.default_rng(0)
    branch = SentimentBranch(1, lean.heads, [lean.layer_weights(1)], rng.normal(size=(3, 32)).astype(np.float32),
                             rng.normal(size=3).astype(np.float32), lean.eps, temperature=0.7)
    branch.save(tmp_path / BRANCH_FILE)
    loaded = SentimentBranch.load(tmp_path / BRANCH_FILE)
    assert (loaded.tap, loaded.depth, loaded.heads, loaded.temperature) == (1, 1, lean.heads, pytest.approx(0.7))
    with np.load(tmp_path / BRANCH_FILE, allow_pickle=False) as data:
        assert data[f"layer0.{LAYER_KEYS[0]}"].dtype == np.int8  # matrices: int8 with a scale per row
        assert data[f"layer0.{LAYER_KEYS[1]}"].dtype == np.float16  # vectors
    for key in LAYER_KEYS:
        assert np.allclose(loaded.layers[0][key], branch.layers[0][key], atol=2e-2, rtol=1e-2), key
    ids, mask = lean.tokenize(TEXTS)
    _, states = lean.forward(ids, mask, keep=1, stop=1)
    assert np.allclose(loaded.logits(states), branch.logits(states), atol=2e-2)
    exact = SentimentBranch.load(tmp_path / BRANCH_FILE)
    exact.int8 = False  # float32 matrix products instead of int8 ones
    assert np.allclose(exact.logits(states), loaded.logits(states), atol=0.1)
    with pytest.raises(ValueError, match="no branch layers"):
        np.savez(tmp_path / "empty.npz", tap=1)
        SentimentBranch.load(tmp_path / "empty.npz")


def test_a_branch_is_stored_as_its_low_rank_change_from_the_encoder(tiny: Path, tmp_path: Path) -> None:
    lean = LeanBert(tiny)
    rng = np.random.default_rng(1)
    tuned = {key: value + (0.02 * np.outer(rng.normal(size=value.shape[0]), rng.normal(size=value.shape[1]))
                           if value.ndim == 2 else value).astype(np.float32)
             for key, value in lean.layer_weights(1).items()}  # a rank-1 change to every matrix
    branch = SentimentBranch(1, lean.heads, [tuned], rng.normal(size=(3, 32)).astype(np.float32),
                             rng.normal(size=3).astype(np.float32), lean.eps)
    whole, delta = tmp_path / "whole.npz", tmp_path / "delta.npz"
    branch.save(whole)
    branch.save(delta, base=lean.layer_weights, rank=2)
    assert delta.stat().st_size < whole.stat().st_size
    with np.load(delta, allow_pickle=False) as data:
        assert f"layer0.{LAYER_KEYS[0]}" not in data and data[f"layer0.{LAYER_KEYS[0]}.u"].dtype == np.int8
    loaded = SentimentBranch.load(delta, base=lean.layer_weights)
    for key in LAYER_KEYS:
        assert np.allclose(loaded.layers[0][key], tuned[key], atol=2e-3, rtol=1e-2), key
    with pytest.raises(ValueError, match="change from its encoder"):
        SentimentBranch.load(delta)  # without the encoder's layers it cannot be rebuilt


def test_token_cache_is_padding_aware(tiny: Path) -> None:
    lean = LeanBert(tiny)
    cache, vectors = build_token_cache(lean, TEXTS, 1, batch_size=2)
    assert len(cache) == 4 and vectors.shape == (4, 32)
    batch = cache.batch([2, 0])
    assert batch.mask.sum(1).tolist() == cache.lengths[[2, 0]].tolist()
    assert float(batch.states[0, int(cache.lengths[2]):].abs().sum()) == 0.0
    ids, mask = lean.tokenize([TEXTS[0]])
    _, direct = lean.forward(ids, mask, keep=1, stop=1)
    assert np.allclose(batch.states[1].numpy(), direct.states[0].numpy(), atol=1e-2)  # stored in float16
    rows, targets = np.array([0, 0, 1, 2, 3] * 10), np.array([0, 0, 1, 1, 0] * 10)
    fit, held = holdout_by_text(rows, targets, 0.5)
    assert not set(rows[fit]) & set(rows[held]) and len(fit) + len(held) == 50
    # a cache rebuilt from its two arrays serves the same rows
    rebuilt = TokenCache(cache.states, cache.offsets)
    assert len(rebuilt) == 4 and rebuilt.lengths.tolist() == cache.lengths.tolist()
    again, first = rebuilt.batch([2, 0]), cache.batch([2, 0])
    assert np.array_equal(again.states.numpy(), first.states.numpy()) and again.mask.tolist() == first.mask.tolist()


def test_fit_branch_predicts_and_round_trips(with_branch: SentimentClassifier, embedder: SentenceEmbedder,
                                             tmp_path: Path) -> None:
    assert with_branch.branch is not None and with_branch.branch.tap == 1 and with_branch.uses_text
    texts = ["the service is wonderful and excellent", "my order is terrible and broken",
             "the update arrived on tuesday at noon"]
    vectors = embedder.encode(texts)
    labels = [p.label for p in with_branch.predict(vectors, texts)]
    assert labels == ["positive", "negative", "neutral"]
    info = with_branch.info["branch"]
    # 36 examples (12 per label), all fitted (holdout=0.0), for the spec's 25 epochs; the time taken
    assert info["depth"] == 1 and (info["examples"], info["heldout"], info["spec"]["epochs"]) == (36, 0, 25)
    assert "heldout_accuracy" not in info and {"train_seconds", "train_cpu_seconds"} <= set(info)
    assert info["distinct_texts"] == len(set(sentiment_examples(neutral=True)[0]))
    folder = with_branch.save(tmp_path / "sentiment")
    assert json.loads((folder / "meta.json").read_text())["branch"]["file"] == BRANCH_FILE
    loaded = SentimentClassifier.load(folder, embedder, neutral_band=0.1)
    assert loaded.branch is not None
    assert np.allclose(loaded.scores(vectors, texts), with_branch.scores(vectors, texts), atol=2e-2)
    # One turn: the branch reads the layer the turn's own encode kept.
    turn = "your team is horrible and angry"
    single = loaded.predict(embedder.encode([turn]), [turn])[0]
    pair = [turn, texts[0]]
    assert single.score == pytest.approx(float(loaded.scores(embedder.encode(pair), pair)[0]), abs=1e-4)


def test_without_a_usable_branch_the_head_decides(with_branch: SentimentClassifier, embedder: SentenceEmbedder,
                                                  tiny: Path, tmp_path: Path) -> None:
    folder = with_branch.save(tmp_path / "sentiment")
    texts = ["the service is wonderful and excellent", "my order is terrible and broken"]
    for clf in (SentimentClassifier.load(folder, embedder, branch=False),
                SentimentClassifier.load(folder, FakeEmbedder(dim=32)),  # another embedder: no tap
                SentimentClassifier.load(folder, SentenceEmbedder(str(tiny), device="cpu", int8=True))):
        assert clf.branch is None
        vectors = clf.embedder.encode(texts)
        assert [p.label for p in clf.predict(vectors, texts)][1] in ("negative", "neutral")
    (folder / BRANCH_FILE).unlink()  # a folder written by the head-only training
    assert SentimentClassifier.load(folder, embedder).branch is None
    (folder / BRANCH_FILE).write_bytes(b"not a zip")
    assert SentimentClassifier.load(folder, embedder).branch is None


def test_refitting_the_head_drops_a_stale_branch(with_branch: SentimentClassifier, embedder: SentenceEmbedder,
                                                 tmp_path: Path) -> None:
    folder = with_branch.save(tmp_path / "sentiment")
    texts, labels = sentiment_examples(neutral=True)
    SentimentClassifier(embedder).fit(texts, labels).save(folder)
    assert not (folder / BRANCH_FILE).exists()


def test_branch_needs_the_lean_encoder() -> None:
    from agent.errors import ConfigError

    texts, labels = sentiment_examples()
    with pytest.raises(ConfigError, match="without --branch"):
        SentimentClassifier(FakeEmbedder()).fit_branch(texts, labels)
