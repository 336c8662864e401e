"""Tiny labelled data sets for the understand tests (no shared data, no weights)."""

from __future__ import annotations

import itertools

_INTENT_WORDS = {
    "weather": (["weather", "rain", "sunny", "forecast", "temperature", "snow"],
                ["today", "tomorrow", "outside", "this weekend"]),
    "music": (["song", "playlist", "album", "band", "guitar", "concert"],
              ["play", "recommend", "favourite", "loud"]),
    "food": (["pizza", "recipe", "pasta", "dinner", "soup", "salad"],
             ["cook", "eat", "hungry", "delicious"]),
}


def intent_examples(per_intent: int = 14) -> tuple[list[str], list[str]]:
    """Texts that share topic words within an intent and none across intents."""
    texts, labels = [], []
    for label, (nouns, extras) in _INTENT_WORDS.items():
        pairs = itertools.islice(itertools.cycle(itertools.product(nouns, extras)), per_intent)
        for i, (noun, extra) in enumerate(pairs):
            texts.append(f"{noun} {extra} {nouns[(i + 1) % len(nouns)]}")
            labels.append(label)
    return texts, labels


_POSITIVE = ["great", "wonderful", "love", "excellent", "happy", "fantastic", "amazing", "good"]
_NEGATIVE = ["awful", "terrible", "hate", "horrible", "angry", "furious", "broken", "bad"]
_FILLER = ["the service", "this app", "my order", "the movie", "your team", "the update"]


def sentiment_examples(neutral: bool = False) -> tuple[list[str], list[str]]:
    """SST-2 style 0/1 labels (or negative/neutral/positive with ``neutral=True``)."""
    texts, labels = [], []
    for i, filler in enumerate(_FILLER * 2):
        texts.append(f"{filler} is {_POSITIVE[i % 8]} and {_POSITIVE[(i + 3) % 8]}")
        labels.append("positive" if neutral else "1")
        texts.append(f"{filler} is {_NEGATIVE[i % 8]} and {_NEGATIVE[(i + 3) % 8]}")
        labels.append("negative" if neutral else "0")
        if neutral:
            texts.append(f"{filler} arrived on tuesday at noon")
            labels.append("neutral")
    return texts, labels
