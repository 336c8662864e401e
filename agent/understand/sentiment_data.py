"""The training set of a sentiment head, from several sources, and the human-rated benchmark.

SST-2 alone teaches polarity on movie-review phrases, where nearly everything is an
opinion, so its head calls a plain support question ("what happens if my parcel is late?")
strongly negative. The shipped head adds sources that teach a neutral class and text
beyond movie reviews:

- assistant requests labelled only by intent (CLINC150), relabelled ``neutral``, a few per
  intent so they do not swamp the rest, without the intents that carry sentiment
  (``thank_you``);
- human-rated sentences (:class:`RatedSet`: a ``valence`` column, the mean human rating on
  -4..+4, as VADER's rated snippets ship): labelled by the sign of the rating when
  ``|valence| >= polar``, else neutral. A rated file is split, by a seeded hash of each
  sentence, into a tuning part (``FILE#tuning``) and a held-out part (``FILE#heldout``)
  that no training or calibration sees;
- a small set of conversational examples written for llmos
  (``data/sentiment_conversation.yml``): support and tutoring questions (neutral),
  complaints and frustration (negative), thanks and praise (positive), including turns
  that mix a question with an emotion, repeated a few times so a few hundred lines count
  against 67k SST-2 phrases.

Without the in-domain negatives the neutral requests teach the head that anything that
looks like a support request is neutral, "I'm furious" included; with them it learns that
the emotional words decide.

Benchmarks share sentences: VADER's movie snippets are Rotten Tomatoes sentences, like
SST-2's. ``exclude`` drops training rows whose text (compared by :func:`text_key`) is in
another set, so a benchmark's test sentences stay unseen.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.errors import InputError
from agent.understand.data import Dataset, combine, load_dataset, parse_spec
from agent.understand.embedding import Progress, embed_texts
from agent.understand.metrics import Report, evaluate_labels

if TYPE_CHECKING:
    from agent.understand.sentiment import SentimentClassifier

__all__ = ["sentiment_training_data", "conversation_examples_path", "RatedSet", "load_rated", "is_rated",
           "load_sentiment_data", "text_key", "rated_part", "RATED_PARTS", "HELDOUT_SHARE", "SPLIT_SEED",
           "POLAR_VALENCE", "evaluate_rated", "combine_rated", "drop_texts", "text_keys"]

RATED_PARTS = ("tuning", "heldout")
HELDOUT_SHARE = 0.3
"""Share of a rated file's sentences in its held-out part."""
SPLIT_SEED = 0
"""Salt of the hash that splits a rated file (another seed, another split)."""
POLAR_VALENCE = 0.5
"""``|valence|`` from which a rated sentence is clearly polar (VADER's ratings: -4..+4)."""


def conversation_examples_path() -> Path:
    """The shipped conversational sentiment examples (Rasa NLU YAML, the sentiment as intent)."""
    return Path(str(resources.files("agent.understand") / "data" / "sentiment_conversation.yml"))


def text_key(text: str) -> str:
    """The form two copies of a sentence share across benchmarks: lower case, letters and
    digits only (SST-2 is tokenised, ``it 's``, ``-lrb-``; VADER's snippets are not)."""
    return re.sub(r"[^0-9a-z]+", "", text.lower().replace("-lrb-", "").replace("-rrb-", ""))


def rated_part(text: str, share: float = HELDOUT_SHARE, seed: int = SPLIT_SEED) -> str:
    """``"heldout"`` or ``"tuning"``: a seeded hash of the sentence's :func:`text_key`, so
    the split does not depend on the file's order and copies of a sentence stay together."""
    bucket = zlib.crc32(f"{seed}:{text_key(text)}".encode()) % 10_000
    return "heldout" if bucket < share * 10_000 else "tuning"


@dataclass(frozen=True)
class RatedSet:
    """Sentences with a human valence rating (negative below 0)."""

    texts: list[str]
    valences: list[float]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def labels(self, polar: float = POLAR_VALENCE) -> list[str]:
        """The sign of the rating where ``|valence| >= polar``, else ``neutral``."""
        return [("positive" if v > 0 else "negative") if abs(v) >= polar else "neutral" for v in self.valences]

    def as_dataset(self, polar: float = POLAR_VALENCE, neutral_below: float = 0.0) -> Dataset:
        """Training examples: the polar sentences by the sign of their rating, the ones
        rated within ``(-neutral_below, neutral_below)`` as neutral, the rest left out."""
        pairs = [(t, g) for t, g, v in zip(self.texts, self.labels(polar), self.valences, strict=True)
                 if g != "neutral" or abs(v) < neutral_below]
        return Dataset([t for t, _ in pairs], [g for _, g in pairs],
                       f"{self.source} (polar from |valence| {polar}, neutral below {neutral_below})")

    def without(self, keys: set[str]) -> RatedSet:
        """The sentences whose :func:`text_key` is not in ``keys``."""
        keep = [i for i, t in enumerate(self.texts) if text_key(t) not in keys]
        return RatedSet([self.texts[i] for i in keep], [self.valences[i] for i in keep], self.source)


def combine_rated(sets: Sequence[RatedSet]) -> RatedSet:
    """Several rated sets as one, in order."""
    return RatedSet([t for r in sets for t in r.texts], [v for r in sets for v in r.valences],
                    " + ".join(r.source for r in sets))


def is_rated(spec: str | Path) -> bool:
    """Whether ``spec`` is a CSV/TSV file with a ``valence`` column."""
    path, _ = parse_spec(spec)
    if path.suffix.lower() not in (".csv", ".tsv") or not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().strip().lower()
    return "valence" in re.split(r"[\t,]", header)


def load_rated(spec: str | Path, *, share: float = HELDOUT_SHARE, seed: int = SPLIT_SEED) -> RatedSet:
    """A rated file (``sentence``/``text`` and ``valence`` columns), all of it or the part
    a fragment names: ``FILE#tuning``, ``FILE#heldout`` (see :func:`rated_part`)."""
    path, parts = parse_spec(spec)
    unknown = [p for p in parts if p not in RATED_PARTS]
    if unknown:
        raise InputError(f"{spec}: unknown part {unknown[0]!r} of a rated file; use FILE#tuning or FILE#heldout")
    if not path.is_file():
        raise InputError(f"data file {path} does not exist: check the path")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else 0)
        names = {n.strip().lower(): n for n in reader.fieldnames or []}
        text_col = names.get("sentence") or names.get("text")
        if text_col is None or "valence" not in names:
            raise InputError(f"{path}: a rated file needs a header with a 'sentence' (or 'text') column and a "
                             f"'valence' column; found {list(names)}")
        texts, valences = [], []
        for row in reader:
            text, value = (row.get(text_col) or "").strip(), (row.get(names["valence"]) or "").strip()
            if not text or not value:
                continue
            try:
                valence = float(value)
            except ValueError as exc:
                raise InputError(f"{path}: valence {value!r} is not a number (row {reader.line_num})") from exc
            if not parts or rated_part(text, share, seed) in parts:
                texts.append(text)
                valences.append(valence)
    if not texts:
        raise InputError(f"{spec} has no rated sentences: check the file and the part after '#'")
    return RatedSet(texts, valences, str(spec))


def load_sentiment_data(spec: str | Path, *, polar: float = POLAR_VALENCE, neutral_below: float = 0.0) -> Dataset:
    """:func:`~agent.understand.data.load_dataset`, and rated files labelled by their
    valence (see :meth:`RatedSet.as_dataset`)."""
    return load_rated(spec).as_dataset(polar, neutral_below) if is_rated(spec) else load_dataset(spec)


def text_keys(specs: Iterable[str]) -> set[str]:
    """The :func:`text_key` of every text in the data ``specs`` (to leave them out)."""
    return {text_key(t) for spec in specs for t in (load_rated(spec) if is_rated(spec) else load_dataset(spec)).texts}


def drop_texts(data: Dataset, keys: set[str]) -> Dataset:
    """``data`` less the rows whose :func:`text_key` is in ``keys``."""
    if not keys:
        return data
    keep = [i for i, t in enumerate(data.texts) if text_key(t) not in keys]
    return Dataset([data.texts[i] for i in keep], [data.labels[i] for i in keep], f"{data.source} (less excluded)")


def sentiment_training_data(data: Sequence[str], *, neutral: Sequence[str] = (), neutral_drop: Sequence[str] = (),
                            neutral_per_label: int = 0, upweight: Sequence[str] = (),
                            upweight_times: int = 1, polar: float = POLAR_VALENCE, rated_neutral: float = 0.0,
                            exclude: Sequence[str] = ()) -> Dataset:
    """``data`` as labelled (rated files by their valence: polar from ``polar``, neutral
    below ``rated_neutral``, see :meth:`RatedSet.as_dataset`), plus
    ``neutral`` (every text neutral, less the rows labelled one of ``neutral_drop``, at
    most ``neutral_per_label`` per label when > 0), plus ``upweight`` repeated
    ``upweight_times`` times; less every row whose text is in one of ``exclude``."""
    keys = text_keys(exclude)
    parts = [drop_texts(load_sentiment_data(spec, polar=polar, neutral_below=rated_neutral), keys) for spec in data]
    for spec in neutral:
        requests = load_dataset(spec)
        if neutral_per_label > 0:
            requests = requests.per_label(neutral_per_label)
        parts.append(drop_texts(requests.relabelled("neutral", drop=neutral_drop), keys))
    parts += [drop_texts(load_sentiment_data(spec, polar=polar, neutral_below=rated_neutral), keys).repeated(max(1, upweight_times))
              for spec in upweight]
    return combine(parts)


def evaluate_rated(clf: SentimentClassifier, rated: RatedSet, embedder: Any, *, polar: float = POLAR_VALENCE,
                   progress: Progress | None = None) -> Report:
    """``clf`` on the clearly polar sentences of ``rated`` (``|valence| >= polar``, gold: the
    sign of the rating): ``accuracy`` counts a sentence labelled neutral as wrong, and
    ``polar_called_neutral`` says how many were; ``polar_sign_accuracy`` reads only the
    sign of the score, as SST-2's benchmark does. The sentences rated near 0 give
    ``near_neutral_called_neutral``."""
    if not len(rated):
        raise InputError(f"{rated.source} has no sentence left to evaluate: check the file, its part and --exclude")
    vectors, embed_seconds = embed_texts(embedder, rated.texts, progress=progress)
    predictions = clf.predict(vectors, rated.texts)
    gold = rated.labels(polar)
    rows = [i for i, g in enumerate(gold) if g != "neutral"]
    if not rows:
        raise InputError(f"{rated.source} has no sentence with |valence| >= {polar}: lower --polar")
    report = evaluate_labels([gold[i] for i in rows], [predictions[i].label for i in rows])
    near = [i for i, g in enumerate(gold) if g == "neutral"]
    report.extra.update({
        "polar_threshold": polar,
        "polar_rows": len(rows),
        "polar_called_neutral": sum(predictions[i].label == "neutral" for i in rows),
        "polar_sign_accuracy": round(float(np.mean([(predictions[i].score > 0) == (gold[i] == "positive")
                                                    for i in rows])), 4),
        "near_neutral_rows": len(near),
        "near_neutral_called_neutral": sum(predictions[i].label == "neutral" for i in near),
        "neutral_band": clf.neutral_band,
        "branch_depth": clf.branch.depth if clf.branch is not None else 0,
        "test_embed_seconds": round(embed_seconds, 3),
    })
    return report
