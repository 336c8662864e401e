"""The shipped defaults: routing intents (examples and a trained head) and the SST-2
sentiment head, all package data under ``agent/understand/data/``."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from agent.understand.config import OOS_LABEL, UnderstandConfig
from agent.understand.data import Dataset, load_dataset

__all__ = ["shipped_dir", "default_intents_file", "default_intent_dataset", "intent_training_data",
           "customizes_intents"]


def shipped_dir(name: str) -> Path:
    """A folder of package data (``intents`` or ``sentiment``: a trained head)."""
    return Path(str(importlib.resources.files("agent.understand") / "data" / name))


def default_intents_file() -> Path:
    """The shipped routing intents, in Rasa NLU YAML."""
    return shipped_dir("intents.yml")


def default_intent_dataset() -> Dataset:
    """``intents.yml`` (written for llmos) plus ``intents_public.yml`` (public prompts: IFEval
    writing requests, MBPP code tasks; see :mod:`agent.toolbox.routing_eval`)."""
    data = load_dataset(default_intents_file())
    public = shipped_dir("intents_public.yml")
    if public.is_file():
        extra = load_dataset(public)
        data = Dataset(data.texts + extra.texts, data.labels + extra.labels, "shipped intents")
    return data


def customizes_intents(config: UnderstandConfig) -> bool:
    """Whether the config changes the shipped intents (so the head must be retrained)."""
    return bool(config.intent_examples or config.drop_intents or config.replace_default_intents)


def intent_training_data(config: UnderstandConfig) -> Dataset:
    """The shipped examples with the config's changes applied.

    Dropped intents are relabelled out-of-scope rather than deleted: a support bot that
    drops ``code_request`` wants "write me a script" turned away, not routed to the
    nearest remaining intent.
    """
    texts: list[str] = []
    labels: list[str] = []
    if not config.replace_default_intents:
        base = default_intent_dataset()
        dropped = set(config.drop_intents)
        unknown = dropped - set(base.classes)
        if unknown:
            from agent.errors import ConfigError

            raise ConfigError(f"understanding.drop_intents names unknown intents {sorted(unknown)}; "
                              f"the shipped intents are {base.classes}")
        for text, label in zip(base.texts, base.labels, strict=True):
            texts.append(text)
            labels.append(OOS_LABEL if label in dropped else label)
    for label, examples in config.intent_examples.items():
        for example in examples:
            if str(example).strip():
                texts.append(str(example).strip())
                labels.append(label)
    return Dataset(texts, labels, "understanding config").require_trainable()
