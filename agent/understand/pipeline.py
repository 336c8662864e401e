"""The understand stage: intent, sentiment, frustration and handoff for one turn.

:func:`build_understanding` turns the ``understanding:`` config and the agent's embedder
into an :class:`~agent.turn.Understanding`. Heads load from the shipped package data, a
folder the config names, or (when the config adds or drops intents) are trained at start-up
on the shipped examples plus the config's, cached on disk by content hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import ConfigError
from agent.turn import Label, Understood
from agent.understand.config import UnderstandConfig
from agent.understand.defaults import customizes_intents, intent_training_data, shipped_dir
from agent.understand.frustration import frustration_level
from agent.understand.intents import IntentClassifier
from agent.understand.routing import handoff_reason
from agent.understand.sentiment import SentimentClassifier

__all__ = ["ClassifierUnderstanding", "build_understanding", "load_intents", "load_sentiment"]

log = logging.getLogger(__name__)


class ClassifierUnderstanding:
    """Classifies a turn on its embedding; any head may be None (then that field is None)."""

    def __init__(self, config: UnderstandConfig, *, intents: IntentClassifier | None = None,
                 sentiment: SentimentClassifier | None = None, embedder: Any = None) -> None:
        self.config = config
        self.intents = intents
        self.sentiment = sentiment
        self.embedder = embedder

    def analyze(self, text: str, vector: Any, prior_sentiments: Sequence[float]) -> Understood:
        """Classify one turn. ``vector`` is the turn's embedding (embedded here when None and
        an embedder is at hand); ``prior_sentiments`` are earlier user turns' signed scores."""
        if not self.config.enabled:
            return Understood(vector=vector)
        if vector is None and self.embedder is not None and (self.intents or self.sentiment):
            vector = self.embedder.encode([text])[0]
        if vector is None:
            return Understood(vector=None)
        matrix = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        understood = Understood(vector=vector)
        if self.intents is not None:
            pred = self.intents.predict(matrix, [text])[0]
            label = self.config.oos_label if pred.label == self.intents.oos_label else pred.label
            understood.intent = Label(label=label, score=round(pred.score, 4))
            understood.extra["intent_alternatives"] = [
                {"label": name, "score": round(p, 4)} for name, p in pred.alternatives]
        if self.sentiment is not None:
            spred = self.sentiment.predict(matrix, [text])[0]
            understood.sentiment = Label(label=spred.label, score=round(spred.score, 4))
            scores = [*prior_sentiments, spred.score]
            understood.frustration = round(frustration_level(
                scores, self.config.frustration_decay, neutral_band=self.config.neutral_band), 4)
        reason = handoff_reason(understood.intent, understood.frustration, len(prior_sentiments) + 1, self.config)
        understood.handoff = reason is not None
        if reason:
            understood.extra["handoff_reason"] = reason
        return understood


def build_understanding(config: UnderstandConfig, embedder: Any, *, intents: IntentClassifier | None = None,
                        sentiment: SentimentClassifier | None = None) -> ClassifierUnderstanding:
    """The understand stage for an agent. ``intents`` / ``sentiment`` replace the heads the
    config would load (tests pass heads trained on fixtures)."""
    if not config.enabled:
        return ClassifierUnderstanding(config, embedder=embedder)
    intents = intents if intents is not None else load_intents(config, embedder)
    if config.oos_threshold is not None:
        intents.threshold_override = config.oos_threshold
    sentiment = sentiment if sentiment is not None else load_sentiment(config, embedder)
    if sentiment is not None:
        sentiment.neutral_band = config.neutral_band
    return ClassifierUnderstanding(config, intents=intents, sentiment=sentiment, embedder=embedder)


def load_intents(config: UnderstandConfig, embedder: Any) -> IntentClassifier:
    """The intent head the config asks for (see the module docstring)."""
    if config.intents_model:
        path = Path(config.intents_model).expanduser()
        if customizes_intents(config):
            raise ConfigError("understanding.intents_model cannot be combined with intent_examples / "
                              "drop_intents: add the examples to its training data and retrain it")
        return IntentClassifier.load(path, embedder)
    shipped = shipped_dir("intents")
    if not customizes_intents(config):
        meta = json.loads((shipped / "meta.json").read_text(encoding="utf-8"))
        if int(meta["dim"]) == int(getattr(embedder, "dim", meta["dim"])):
            return IntentClassifier.load(shipped, embedder)
        log.info("the shipped intent head is for %s-d vectors; retraining it for %s", meta["dim"],
                 getattr(embedder, "name", "this embedder"))
    return _trained_from_config(config, embedder)


def _trained_from_config(config: UnderstandConfig, embedder: Any) -> IntentClassifier:
    if embedder is None:
        raise ConfigError("custom intents need the embedder to train; enable memory's embedder")
    data = intent_training_data(config)
    key = hashlib.sha256(json.dumps(
        [data.texts, data.labels, getattr(embedder, "name", "?"), int(embedder.dim)]).encode()).hexdigest()[:16]
    cache = _cache_root() / f"intents-{key}"
    if (cache / "meta.json").is_file():
        try:
            return IntentClassifier.load(cache, embedder)
        except ConfigError:
            log.warning("ignoring an unreadable cached intent head in %s", cache)
    log.info("training the intent head on %d examples (%d intents)", len(data), len(data.classes))
    clf = IntentClassifier(embedder).fit(data.texts, data.labels)
    try:
        clf.save(cache)
    except OSError as exc:  # a read-only cache only costs the retraining next time
        log.warning("cannot cache the intent head in %s: %s", cache, exc)
    return clf


def _cache_root() -> Path:
    from agent.paths import default_cache_dir

    return default_cache_dir() / "understand"


def load_sentiment(config: UnderstandConfig, embedder: Any) -> SentimentClassifier | None:
    """The configured sentiment head, or the shipped SST-2 head when it fits the embedder
    (None, with a log line, when it does not: there is no shipped data to retrain on)."""
    if config.sentiment_model:
        return SentimentClassifier.load(Path(config.sentiment_model).expanduser(), embedder,
                                        neutral_band=config.neutral_band)
    shipped = shipped_dir("sentiment")
    meta = json.loads((shipped / "meta.json").read_text(encoding="utf-8"))
    if int(meta["dim"]) != int(getattr(embedder, "dim", meta["dim"])):
        log.warning("the shipped sentiment head needs %s-d vectors from %s; sentiment is off for %s. "
                    "Train one with: llmos train sentiment DATA -o DIR, and set understanding.sentiment_model",
                    meta["dim"], meta.get("embedder"), getattr(embedder, "name", "this embedder"))
        return None
    return SentimentClassifier.load(shipped, embedder, neutral_band=config.neutral_band)
