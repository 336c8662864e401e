"""Out-of-scope thresholds, calibrated on held-out data rather than guessed.

A softmax head is confident about almost anything, including text unlike its training
data. So the classifier trains twice: once on most of the data, to see how it behaves on
the held-out rest, then on everything. From the held-out part come

- a temperature (Guo et al. 2017), so reported confidences mean what they say;
- a confidence threshold: the ``max_loss`` quantile of the top probabilities of held-out
  in-scope examples the head got right, so at most that share of right answers is
  turned into "out of scope" (wrong answers turned away cost nothing). That probability
  is taken at a fixed, softer ``detect_temperature`` (2.0), not the NLL-fitted one: on
  CLINC150 ranking texts by it found 0.76 of out-of-scope queries at 0.95 in-scope
  accuracy, against 0.67 at the fitted temperature (0.5), which sharpens the top
  probability of unfamiliar text as much as of familiar text;
- a similarity threshold on the cosine between the text and its predicted intent's
  centroid, the same way: out-of-scope text tends to sit far from every intent, even
  where the softmax is sure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from agent.understand.head import HeadSpec, fit_temperature, softmax, train_head

__all__ = ["Calibration", "calibrate", "stratified_holdout", "centroids", "centroid_similarity"]

MAX_THRESHOLD = 0.9
"""A confidence threshold above this would turn away confident in-scope answers: when the
held-out examples are all easy, their confidences say little about new text."""


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` learnt; stored in the classifier's meta.json."""

    temperature: float
    threshold: float
    similarity: float
    heldout: int
    heldout_accuracy: float
    detect_temperature: float = 1.0
    """The temperature of the softmax whose top probability is compared with ``threshold``."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def stratified_holdout(targets: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices to fit on and to hold out: ``fraction`` of each class, keeping at least two
    examples of every class in the fit part (a class with fewer than 3 is not held out)."""
    rng = np.random.default_rng(seed)
    fit: list[int] = []
    held: list[int] = []
    for label in np.unique(targets):
        index = np.flatnonzero(targets == label)
        rng.shuffle(index)
        take = int(round(len(index) * fraction)) if len(index) >= 3 else 0
        take = min(take, len(index) - 2)
        held.extend(index[:take])
        fit.extend(index[take:])
    return np.sort(np.asarray(fit, dtype=np.int64)), np.sort(np.asarray(held, dtype=np.int64))


def centroids(vectors: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-length mean vector of each class (zero for a class with no examples)."""
    out = np.zeros((n_classes, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, targets, vectors.astype(np.float32))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def centroid_similarity(vectors: np.ndarray, cents: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Cosine between each (unit) vector and the centroid of its predicted class."""
    return np.einsum("ij,ij->i", np.asarray(vectors, dtype=np.float32), cents[predicted])


def calibrate(vectors: np.ndarray, targets: np.ndarray, n_classes: int, spec: HeadSpec, *,
              oos_index: int | None, max_loss: float, similarity_loss: float, holdout: float = 0.2,
              seed: int = 0, texts: Sequence[str] | None = None, detect_temperature: float = 2.0) -> Calibration:
    """Train on ``1 - holdout`` of the data and derive the temperature and thresholds from
    the rest (see the module docstring). Falls back to T=1 and no thresholds when the data
    is too small to hold anything out."""
    fit, held = stratified_holdout(targets, holdout, seed)
    if len(held) < 5:
        return Calibration(1.0, 0.0, -1.0, int(len(held)), float("nan"), detect_temperature)
    fit_texts = [texts[i] for i in fit] if texts is not None else None
    held_texts = [texts[i] for i in held] if texts is not None else None
    head = train_head(vectors[fit], targets[fit], n_classes, spec, texts=fit_texts)
    logits = head.logits(vectors[held], held_texts)
    temperature = fit_temperature(logits, targets[held])
    proba = softmax(logits / temperature)
    predicted = proba.argmax(axis=1)
    gold = targets[held]
    right = predicted == gold
    if oos_index is not None:
        right &= gold != oos_index
    confidence = softmax(logits / detect_temperature).max(axis=1)
    # Centroids from the fit part only: held-out text must not be its own neighbour.
    cents = centroids(vectors[fit], targets[fit], n_classes)
    similarity = centroid_similarity(vectors[held], cents, predicted)
    threshold = min(_lower_bound(confidence[right], max_loss, 0.0), MAX_THRESHOLD)
    sim_threshold = _lower_bound(similarity[right], similarity_loss, -1.0)
    return Calibration(temperature, threshold, sim_threshold, int(len(held)), float((predicted == gold).mean()),
                       detect_temperature)


def _lower_bound(values: np.ndarray, share: float, floor: float) -> float:
    """A value that about ``share`` of ``values`` fall below: the empirical quantile, or,
    when fewer than 5 values would fall below it (a few dozen held-out examples), the lower
    of it and a normal approximation, since such a quantile is close to the minimum and
    too strict. With thousands of values the quantile is used as is: confidences are far
    from normal, and the normal bound would be far too low."""
    if share <= 0 or len(values) == 0:
        return floor
    quantile = float(np.quantile(values, share))
    if len(values) < 2 or len(values) * share >= 5:
        return max(floor, quantile)
    # Confidences are bounded in (0, 1) and pile up near 1; their logits are closer to
    # normal, so the bound is taken there and mapped back.
    clipped = np.clip(values.astype(np.float64), 1e-6, 1 - 1e-6) if floor >= 0 else values.astype(np.float64)
    z = np.log(clipped / (1 - clipped)) if floor >= 0 else clipped
    bound = float(np.mean(z) + NormalDist().inv_cdf(share) * np.std(z, ddof=1))
    normal = 1.0 / (1.0 + np.exp(-bound)) if floor >= 0 else bound
    return max(floor, min(quantile, float(normal)))
