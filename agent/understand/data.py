"""Labelled text for training and evaluating the classifiers, in the formats users bring.

A data *spec* is a path, optionally with a fragment that selects splits of a JSON file:

- CSV (``.csv``) or TSV (``.tsv``, GLUE style: no quoting) with a header row; the text
  column is ``text`` or ``sentence``, the label column ``intent``, ``label`` or ``category``.
- JSONL (``.jsonl``): one object per line with the same keys, or a ``[text, label]`` pair.
- Rasa NLU YAML (``.yml`` / ``.yaml``): the ``nlu:`` list of ``intent:`` / ``examples:``
  items, so a Rasa user's ``nlu.yml`` works unchanged (entity markup is stripped).
- JSON (``.json``): an object of splits ``{split: [[text, label], ...]}`` as CLINC150 ships,
  selected with ``FILE#split`` and joined with ``FILE#split1+split2``; or a plain list of
  pairs or objects.

Every problem is an :class:`~agent.errors.InputError` that names the file and says how
to fix it: an empty file, a missing column, a single class, an unknown split.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import InputError

__all__ = ["Dataset", "load_dataset", "parse_spec", "combine", "TEXT_KEYS", "LABEL_KEYS"]

TEXT_KEYS = ("text", "sentence")
LABEL_KEYS = ("intent", "label", "category")

# Rasa entity markup: [Berlin](city), [Berlin]{"entity": "city"}, [Berlin][{...}] -> Berlin
_RASA_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")


@dataclass(frozen=True)
class Dataset:
    """Parallel lists of texts and string labels, and where they came from."""

    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def counts(self) -> dict[str, int]:
        """Examples per label."""
        return dict(Counter(self.labels))

    def require_trainable(self, min_classes: int = 2) -> Dataset:
        """Raise unless there is something a classifier can learn from; return self."""
        if not self.texts:
            raise InputError(f"{self.source} has no examples: add labelled rows, or check the split name")
        if len(self.classes) < min_classes:
            only = self.classes[0] if self.classes else "(none)"
            raise InputError(
                f"{self.source} has only one label ({only!r}); a classifier needs at least {min_classes} "
                "labels: add examples of the other classes"
            )
        return self

    def relabelled(self, label: str, *, drop: Sequence[str] = ()) -> Dataset:
        """Every text with ``label`` instead of its own, less the rows labelled one of
        ``drop``: CLINC150's assistant requests become ``neutral`` sentiment examples,
        without its ``thank_you`` rows (thanks are positive)."""
        dropped = set(drop)
        keep = [t for t, lab in zip(self.texts, self.labels, strict=True) if lab not in dropped]
        return Dataset(keep, [label] * len(keep), f"{self.source} as {label!r}")

    def per_label(self, n: int) -> Dataset:
        """At most the first ``n`` examples of each label (a small, balanced, deterministic
        sample: every intent of a large set, a few times each)."""
        seen: Counter[str] = Counter()
        texts, labels = [], []
        for text, label in zip(self.texts, self.labels, strict=True):
            if seen[label] < n:
                seen[label] += 1
                texts.append(text)
                labels.append(label)
        return Dataset(texts, labels, f"{self.source} ({n} per label)")

    def repeated(self, times: int) -> Dataset:
        """Every example ``times`` times: more weight for a small in-domain set."""
        return Dataset(self.texts * times, self.labels * times, f"{self.source} x{times}")


def combine(datasets: Sequence[Dataset]) -> Dataset:
    """Several data sets as one, in order."""
    texts = [t for d in datasets for t in d.texts]
    labels = [lab for d in datasets for lab in d.labels]
    return Dataset(texts, labels, " + ".join(d.source for d in datasets))


def parse_spec(spec: str | Path) -> tuple[Path, list[str]]:
    """Split ``FILE#a+b`` into the path and the split names (empty when no fragment).

    A path that exists as written wins, so a file name that contains ``#`` still works.
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists() or "#" not in text:
        return path, []
    base, _, fragment = text.rpartition("#")
    splits = [s.strip() for s in fragment.split("+") if s.strip()]
    if not splits:
        raise InputError(f"{text!r}: nothing after '#'; name a split, e.g. {base}#train or {base}#train+val")
    return Path(base).expanduser(), splits


def load_dataset(spec: str | Path) -> Dataset:
    """Load labelled texts from a data spec (see the module docstring for the formats)."""
    path, splits = parse_spec(spec)
    if not path.is_file():
        raise InputError(f"data file {path} does not exist: check the path")
    suffix = path.suffix.lower()
    if splits and suffix != ".json":
        raise InputError(f"{spec}: '#split' selects splits of a JSON file only; drop the '#...' part")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc}); re-save it as UTF-8") from exc
    if not raw.strip():
        raise InputError(f"{path} is empty: add labelled examples")
    if suffix in (".csv", ".tsv"):
        pairs = _read_delimited(raw, path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        pairs = _read_jsonl(raw, path)
    elif suffix in (".yml", ".yaml"):
        pairs = _read_rasa(raw, path)
    elif suffix == ".json":
        pairs = _read_json(raw, path, splits)
    else:
        raise InputError(
            f"{path}: unknown data format {suffix or '(no extension)'!r}; use .csv, .tsv, .jsonl, "
            ".json (splits, FILE#split) or Rasa NLU .yml"
        )
    source = str(spec)
    texts, labels = _clean(pairs, source)
    if not texts:
        raise InputError(f"{source} has no examples with both a text and a label: add labelled rows")
    return Dataset(texts, labels, source)


def _clean(pairs: list[tuple[Any, Any]], source: str) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for text, label in pairs:
        if text is None or label is None:
            continue
        text, label = str(text).strip(), str(label).strip()
        if text and label:
            texts.append(text)
            labels.append(label)
    return texts, labels


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {n.strip().lower(): n for n in names}
    return next((lowered[w] for w in wanted if w in lowered), None)


def _missing_columns(path: Path, found: list[str]) -> InputError:
    return InputError(
        f"{path}: needs a header with a text column ({' or '.join(TEXT_KEYS)}) and a label column "
        f"({', '.join(LABEL_KEYS)}); found {found}. Rename the columns or add a header row"
    )


def _read_delimited(raw: str, path: Path, delimiter: str) -> list[tuple[Any, Any]]:
    # GLUE TSVs (SST-2) are unquoted and contain stray double quotes in sentences.
    if delimiter == "\t":
        reader = csv.DictReader(raw.splitlines(), delimiter=delimiter, quoting=csv.QUOTE_NONE)
    else:
        reader = csv.DictReader(raw.splitlines(), delimiter=delimiter)
    header = list(reader.fieldnames or [])
    text_key, label_key = _pick(header, TEXT_KEYS), _pick(header, LABEL_KEYS)
    if text_key is None or label_key is None:
        raise _missing_columns(path, header)
    return [(row.get(text_key), row.get(label_key)) for row in reader]


def _pair(item: Any, where: str) -> tuple[Any, Any]:
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict):
        keys = list(item)
        text_key, label_key = _pick(keys, TEXT_KEYS), _pick(keys, LABEL_KEYS)
        if text_key is None or label_key is None:
            raise InputError(
                f"{where}: an example needs a text key ({' or '.join(TEXT_KEYS)}) and a label key "
                f"({', '.join(LABEL_KEYS)}); found {keys}"
            )
        return item[text_key], item[label_key]
    raise InputError(f"{where}: expected an object or a [text, label] pair, got {type(item).__name__}")


def _read_jsonl(raw: str, path: Path) -> list[tuple[Any, Any]]:
    pairs: list[tuple[Any, Any]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number} is not valid JSON ({exc.msg}); one JSON object per line") from None
        pairs.append(_pair(item, f"{path}:{number}"))
    return pairs


def _read_json(raw: str, path: Path, splits: list[str]) -> list[tuple[Any, Any]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, list):
        if splits:
            raise InputError(f"{path} is a plain list of examples, not an object of splits; drop '#...'")
        return [_pair(item, str(path)) for item in data]
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object of splits or a list of examples")
    available = sorted(k for k, v in data.items() if isinstance(v, list))
    if not splits:
        raise InputError(
            f"{path} holds several splits ({', '.join(available)}); pick them with "
            f"{path}#split or {path}#split1+split2"
        )
    pairs: list[tuple[Any, Any]] = []
    for split in splits:
        if split not in available:
            raise InputError(f"{path} has no split {split!r}; available: {', '.join(available)}")
        pairs.extend(_pair(item, f"{path}#{split}") for item in data[split])
    return pairs


def _read_rasa(raw: str, path: Path) -> list[tuple[Any, Any]]:
    import yaml

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from None
    items = data.get("nlu") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{path}: expected Rasa NLU YAML with a top-level 'nlu:' list of intents and examples")
    pairs: list[tuple[Any, Any]] = []
    for item in items:
        # synonym, regex and lookup items carry no intent examples.
        if not isinstance(item, dict) or "intent" not in item:
            continue
        label = item["intent"]
        for example in _rasa_examples(item.get("examples"), path, label):
            pairs.append((_RASA_ENTITY.sub(r"\1", example), label))
    return pairs


def _rasa_examples(examples: Any, path: Path, label: str) -> list[str]:
    if examples is None:
        return []
    if isinstance(examples, str):
        # The usual form: a block string of "- example" lines.
        out = []
        for line in examples.splitlines():
            line = line.strip()
            if line.startswith("- "):
                out.append(line[2:])
            elif line == "-":
                continue
            elif line:
                out.append(line)
        return out
    if isinstance(examples, list):
        # Rasa 3 also allows a list of {text: ..., metadata: ...} items, or plain strings.
        return [str(e["text"]) if isinstance(e, dict) else str(e) for e in examples
                if not isinstance(e, dict) or "text" in e]
    raise InputError(f"{path}: intent {label!r} has examples of an unexpected type; use a '- example' list")
