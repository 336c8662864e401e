"""Train-and-test runs behind ``llmos eval intents`` and ``llmos eval sentiment``.

Timing is split so the figures say what they include: ``train_seconds`` is the head
alone (calibration included) on precomputed embeddings; ``embed_seconds`` is embedding
the training texts; ``train_seconds_with_embedding`` is their sum.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent.understand.data import Dataset
from agent.understand.embedding import Progress, embed_texts
from agent.understand.intents import OOS_NAMES, IntentClassifier
from agent.understand.metrics import Report, evaluate_labels
from agent.understand.sentiment import SentimentClassifier, normalize_sentiment_label

__all__ = ["evaluate_intents", "evaluate_sentiment", "oos_label_of"]


def oos_label_of(test: Dataset, clf: IntentClassifier) -> str:
    """The test set's out-of-scope label (CLINC's ``oos``), or the classifier's."""
    return next((c for c in test.classes if c.lower() in OOS_NAMES), clf.oos_label)


def evaluate_intents(train: Dataset, test: Dataset, embedder: Any, *,
                     progress: Progress | None = None) -> tuple[Report, IntentClassifier]:
    """Train on ``train``, classify ``test``, and compare. The out-of-scope label of the
    predictions is renamed to the test set's when they differ."""
    train.require_trainable()
    if not len(test):
        from agent.errors import InputError

        raise InputError(f"{test.source} has no test examples")
    train_vectors, embed_train = embed_texts(embedder, train.texts, progress=progress)
    clf = IntentClassifier(embedder).fit(train.texts, train.labels, vectors=train_vectors)
    train_seconds = float(clf.info["train_seconds"])
    test_vectors, embed_test = embed_texts(embedder, test.texts, progress=progress)
    start = time.perf_counter()
    predictions = clf.predict(test_vectors, test.texts)
    predict_ms = (time.perf_counter() - start) * 1000 / max(1, len(test))
    oos = oos_label_of(test, clf)
    predicted = [oos if p.label == clf.oos_label else p.label for p in predictions]
    report = evaluate_labels(test.labels, predicted, oos_label=oos)
    report.extra.update({
        "train_seconds": round(train_seconds, 3),
        "embed_seconds": round(embed_train, 3),
        "train_seconds_with_embedding": round(train_seconds + embed_train, 3),
        "test_embed_seconds": round(embed_test, 3),
        "head_ms_per_example": round(predict_ms, 4),
        "threshold": round(clf.threshold, 4),
        "similarity_threshold": round(clf.similarity_threshold, 4),
        "train_examples": len(train),
        "intents": len([c for c in clf.labels if c != clf.oos_label]),
    })
    return report, clf


def evaluate_sentiment(clf: SentimentClassifier, test: Dataset, embedder: Any, *,
                       progress: Progress | None = None) -> Report:
    """Accuracy and macro-F1 of ``clf`` on ``test``.

    On binary data (SST-2) a prediction is the sign of the score, as the benchmark
    defines it; ``neutral_rate`` says how many of those the neutral band would call
    neutral in a conversation.
    """
    gold = [normalize_sentiment_label(label) for label in test.labels]
    vectors, embed_seconds = embed_texts(embedder, test.texts, progress=progress)
    start = time.perf_counter()
    scores = clf.scores(vectors, test.texts)
    classify_seconds = time.perf_counter() - start
    binary = "neutral" not in set(gold)
    if binary:
        predicted = ["positive" if s > 0 else "negative" for s in scores]
    else:
        predicted = [p.label for p in clf.predict(vectors, test.texts)]
    report = evaluate_labels(gold, predicted)
    report.extra.update({
        "neutral_rate": round(float(np.mean(np.abs(scores) < clf.neutral_band)), 4),
        "neutral_band": clf.neutral_band,
        "test_embed_seconds": round(embed_seconds, 3),
        "classify_seconds": round(classify_seconds, 3),
        "branch_depth": clf.branch.depth if clf.branch is not None else 0,
    })
    if clf.branch is not None:
        branch = clf.info.get("branch", {})
        report.extra.update({k: branch[k] for k in ("train_cpu_seconds", "encode_cpu_seconds") if k in branch})
    if "train_seconds" in clf.info:
        report.extra["train_seconds"] = clf.info["train_seconds"]
    return report
