"""Intent and sentiment classifiers on the turn's embedding.

The dialogue manager embeds each user turn once; :func:`build_understanding` returns the
stage that classifies that vector (intent with out-of-scope detection, sentiment with a
signed score, a frustration signal over the session) and decides when a human should take
over. Classifiers follow one contract: ``fit(texts, labels)``, ``predict(vectors)``,
``save(dir)``, ``load(dir)``.
"""

from __future__ import annotations

from agent.understand.artifacts import Prediction
from agent.understand.config import DEFAULT_ROUTES, UnderstandConfig
from agent.understand.data import Dataset, load_dataset
from agent.understand.frustration import frustration_level
from agent.understand.intents import IntentClassifier, IntentTraining
from agent.understand.pipeline import ClassifierUnderstanding, build_understanding
from agent.understand.routing import handoff_reason, route_for
from agent.understand.sentiment import SentimentClassifier, SentimentTraining
from agent.understand.sentiment_data import sentiment_training_data

__all__ = [
    "UnderstandConfig",
    "DEFAULT_ROUTES",
    "Dataset",
    "load_dataset",
    "Prediction",
    "IntentClassifier",
    "IntentTraining",
    "SentimentClassifier",
    "SentimentTraining",
    "sentiment_training_data",
    "ClassifierUnderstanding",
    "build_understanding",
    "frustration_level",
    "route_for",
    "handoff_reason",
]
