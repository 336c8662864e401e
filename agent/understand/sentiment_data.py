"""The training set of a sentiment head, from several sources.

SST-2 alone teaches polarity on movie-review phrases, where nearly everything is an
opinion, so its head calls a plain support question ("what happens if my parcel is late?")
strongly negative. The shipped head adds two sources that teach a neutral class:

- assistant requests labelled only by intent (CLINC150), relabelled ``neutral``, a few per
  intent so they do not swamp the rest, without the intents that carry sentiment
  (``thank_you``);
- a small set of conversational examples written for llmos
  (``data/sentiment_conversation.yml``): support and tutoring questions (neutral),
  complaints and frustration (negative), thanks and praise (positive), including turns
  that mix a question with an emotion, repeated a few times so a few hundred lines count
  against 67k SST-2 phrases.

Without the in-domain negatives the neutral requests teach the head that anything that
looks like a support request is neutral, "I'm furious" included; with them it learns that
the emotional words decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from agent.understand.data import Dataset, combine, load_dataset

__all__ = ["sentiment_training_data", "conversation_examples_path"]


def conversation_examples_path() -> Path:
    """The shipped conversational sentiment examples (Rasa NLU YAML, the sentiment as intent)."""
    return Path(str(resources.files("agent.understand") / "data" / "sentiment_conversation.yml"))


def sentiment_training_data(data: Sequence[str], *, neutral: Sequence[str] = (), neutral_drop: Sequence[str] = (),
                            neutral_per_label: int = 0, upweight: Sequence[str] = (),
                            upweight_times: int = 1) -> Dataset:
    """``data`` as labelled, plus ``neutral`` (every text neutral, less the rows labelled one
    of ``neutral_drop``, at most ``neutral_per_label`` per label when > 0), plus ``upweight``
    repeated ``upweight_times`` times."""
    parts = [load_dataset(spec) for spec in data]
    for spec in neutral:
        requests = load_dataset(spec)
        if neutral_per_label > 0:
            requests = requests.per_label(neutral_per_label)
        parts.append(requests.relabelled("neutral", drop=neutral_drop))
    parts += [load_dataset(spec).repeated(max(1, upweight_times)) for spec in upweight]
    return combine(parts)
