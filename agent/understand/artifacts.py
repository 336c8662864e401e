"""What classifiers return and how their folders are written and checked.

A trained classifier is a folder: ``head.npz`` (numpy arrays, loaded with
``allow_pickle=False``) and ``meta.json`` (labels, thresholds, the embedder it was trained
on, training figures). No pickle: a model folder from a stranger cannot run code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.files import atomic_write

__all__ = ["Prediction", "write_meta", "read_meta", "check_embedder", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Prediction:
    """One classification: the label, its score, and the runners-up.

    For intents ``score`` is the calibrated confidence in [0, 1]; for sentiment it is the
    signed polarity in [-1, 1] (negative < 0 < positive).
    """

    label: str
    score: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    """The next most likely labels with their probabilities, best first."""
    extra: dict[str, float] = field(default_factory=dict)
    """Figures behind the decision (raw confidence, centroid similarity, ...)."""


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` atomically (temp file + rename), so a crash never leaves half a file."""
    payload = json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2, sort_keys=True)
    atomic_write(folder / "meta.json", payload + "\n")


def read_meta(folder: Path, kind: str) -> dict[str, Any]:
    """Read and sanity-check a classifier folder's ``meta.json``."""
    path = folder / "meta.json"
    if not path.is_file() or not (folder / "head.npz").is_file():
        raise ConfigError(
            f"{folder} is not a trained {kind} classifier (needs meta.json and head.npz); "
            f"train one with: llmos train {kind} DATA -o {folder}"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}); retrain with llmos train {kind}") from None
    if meta.get("kind") != kind:
        raise ConfigError(f"{folder} holds a {meta.get('kind')!r} classifier, not {kind!r}: check the path")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(f"{folder} was written by a newer llmos (format {meta['format_version']}); upgrade llmos")
    return meta


def check_embedder(meta: dict[str, Any], embedder: Any, folder: Path | str) -> None:
    """Refuse a head trained on vectors of another size; warn on another embedder name."""
    dim = getattr(embedder, "dim", None)
    if dim is not None and int(meta["dim"]) != int(dim):
        raise ConfigError(
            f"the classifier in {folder} was trained on {meta['dim']}-d vectors from "
            f"{meta.get('embedder')!r}, but the agent's embedder {getattr(embedder, 'name', '?')!r} gives "
            f"{dim}-d vectors: retrain it with the agent's embedder (llmos train {meta['kind']} ...)"
        )
    name = getattr(embedder, "name", None)
    if name is not None and meta.get("embedder") not in (None, name):
        log.warning("classifier %s was trained with embedder %r, the agent uses %r; "
                    "predictions may be poor", folder, meta.get("embedder"), name)
