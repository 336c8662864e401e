"""The sentiment classifier: negative / neutral / positive with a signed score.

Two ways to read a turn, stored side by side in one folder:

- the head (``head.npz``): linear on the turn's frozen sentence embedding plus hashed word
  n-grams, like the intent head; works with any embedder;
- the branch (``branch.npz``, :mod:`agent.understand.branch`): the embedder's top layers,
  fine-tuned for sentiment, fed by a lower layer of the turn's own encoder pass. More
  accurate (SST-2 dev 0.891 against the head's 0.848), and used whenever the folder has
  one and the embedder can hand over that layer (the default MiniLM on CPU); otherwise
  the head runs.

Binary data (SST-2: 0 = negative, 1 = positive) gives a two-class model whose signed score
is ``P(positive) - P(negative)`` in [-1, 1] after temperature calibration; a score inside
``(-neutral_band, +neutral_band)`` is labelled neutral, because the model is unsure. Data
with a neutral class trains a three-class model; its argmax then may also say neutral.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.errors import ConfigError, InputError
from agent.understand.artifacts import Prediction, check_embedder, read_meta, write_meta
from agent.understand.branch import BRANCH_FILE, BaseLayers, SentimentBranch
from agent.understand.calibration import stratified_holdout
from agent.understand.config import UnderstandConfig
from agent.understand.embedding import Progress, embed_texts
from agent.understand.head import Head, HeadSpec, fit_temperature, softmax, train_head

if TYPE_CHECKING:
    from agent.understand.branch_train import BranchSpec

__all__ = ["SentimentClassifier", "SentimentTraining", "normalize_sentiment_label", "POLARITIES",
           "DEFAULT_NEUTRAL_BAND"]

log = logging.getLogger(__name__)

POLARITIES = ("negative", "neutral", "positive")

DEFAULT_NEUTRAL_BAND: float = UnderstandConfig.model_fields["neutral_band"].default
"""The agent's default band (``understanding.neutral_band``), so ``llmos eval`` measures
what a turn gets."""

_ALIASES = {
    "0": "negative", "neg": "negative", "negative": "negative", "-1": "negative", "-": "negative",
    "1": "positive", "pos": "positive", "positive": "positive", "+1": "positive", "+": "positive",
    "neutral": "neutral", "neu": "neutral", "none": "neutral",
}


def normalize_sentiment_label(label: str) -> str:
    """Map SST-2's 0/1 and common spellings to negative / neutral / positive."""
    key = str(label).strip().lower()
    if key not in _ALIASES:
        raise InputError(
            f"unknown sentiment label {label!r}: use negative/neutral/positive (or 0 = negative, "
            "1 = positive, as SST-2 does)"
        )
    return _ALIASES[key]


@dataclass(frozen=True)
class SentimentTraining:
    """How :meth:`SentimentClassifier.fit` trains."""

    spec: HeadSpec = HeadSpec(epochs=3, lr=2e-2, batch_size=512, lexical_buckets=2**17)
    """Linear on the embedding plus hashed word n-grams: SST-2 dev accuracy 0.85, against
    0.81 for the embedding alone (linear or a 512-unit MLP alike)."""
    holdout: float = 0.1
    """Share held out to fit the temperature (the final head sees everything)."""
    seed: int = 0


class SentimentClassifier:
    """``fit(texts, labels)``, ``predict(vectors)``, ``save(dir)``, ``load(dir)``."""

    kind = "sentiment"

    def __init__(self, embedder: Any = None, *, neutral_band: float = DEFAULT_NEUTRAL_BAND,
                 training: SentimentTraining = SentimentTraining()) -> None:
        if not 0.0 <= neutral_band < 1.0:
            raise InputError(f"neutral_band must be in [0, 1), got {neutral_band}")
        self.embedder = embedder
        self.neutral_band = neutral_band
        self.training = training
        self._head: Head | None = None
        self._branch: SentimentBranch | None = None
        self._labels: list[str] = []
        self._meta: dict[str, Any] = {}

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, vectors: np.ndarray | None = None,
            progress: Progress | None = None) -> SentimentClassifier:
        """Train on texts labelled negative/positive (and optionally neutral), or 0/1."""
        texts = list(texts)
        classes, targets = _targets(texts, labels)
        embed_seconds = 0.0
        if vectors is None:
            vectors, embed_seconds = embed_texts(self.embedder, texts, progress=progress)
        vectors = np.asarray(vectors, dtype=np.float32)
        spec = self.training.spec.sized_for(len(texts))
        start = time.perf_counter()
        fit, held = stratified_holdout(targets, self.training.holdout, self.training.seed)
        temperature = 1.0
        if len(held) >= 20:
            probe = train_head(vectors[fit], targets[fit], len(classes), spec, texts=[texts[i] for i in fit])
            temperature = fit_temperature(probe.logits(vectors[held], [texts[i] for i in held]), targets[held])
        head = train_head(vectors, targets, len(classes), spec, texts=texts)
        head.temperature = temperature
        seconds = time.perf_counter() - start
        self._head, self._labels, self._branch = head, classes, None
        self._meta = {
            "kind": self.kind, "labels": classes, "dim": int(vectors.shape[1]), "spec": spec.to_json(),
            "embedder": getattr(self.embedder, "name", None), "examples": len(texts),
            "temperature": temperature, "train_seconds": round(seconds, 3),
            "embed_seconds": round(embed_seconds, 3),
        }
        log.info("trained sentiment on %d examples in %.1fs", len(texts), seconds)
        return self

    def fit_branch(self, texts: Sequence[str], labels: Sequence[str], spec: BranchSpec | None = None, *,
                   progress: Progress | None = None, init: str | Path | None = None) -> SentimentClassifier:
        """Train the head (the fallback) and a branch of the embedder's top ``spec.depth``
        layers (see :mod:`agent.understand.branch_train`). Needs the lean MiniLM path of a
        :class:`~agent.models.embedder.SentenceEmbedder` (CPU, not int8). ``init``: a folder whose
        branch (same depth, same labels) training goes on from, instead of the encoder's layers."""
        from agent.understand.branch_train import BranchSpec, build_token_cache, train_branch

        spec = spec or BranchSpec()
        lean = self.embedder.lean_encoder() if hasattr(self.embedder, "lean_encoder") else None
        if lean is None:
            raise ConfigError("training a sentiment branch needs the default sentence embedder (or another BERT "
                              "model with mean pooling) on the CPU, without int8; train the head alone instead "
                              "(llmos train sentiment without --branch)")
        if not 1 <= spec.depth <= lean.num_layers:
            raise InputError(f"the branch depth must be 1..{lean.num_layers}, got {spec.depth}")
        texts = list(texts)
        classes, targets = _targets(texts, labels)
        distinct = list(dict.fromkeys(texts))
        position = {text: i for i, text in enumerate(distinct)}
        rows = np.asarray([position[t] for t in texts], dtype=np.int64)
        tap = lean.num_layers - spec.depth
        start_from = _start_branch(Path(init), tap, classes, lean.layer_weights) if init is not None else None
        start, start_cpu = time.perf_counter(), time.process_time()
        cache, vectors = build_token_cache(lean, distinct, tap, progress=progress)
        encode = {"encode_seconds": round(time.perf_counter() - start, 1),
                  "encode_cpu_seconds": round(time.process_time() - start_cpu, 1), "distinct_texts": len(distinct)}
        self.fit(texts, labels, vectors=vectors[rows])
        layers = [lean.layer_weights(i) for i in range(tap, lean.num_layers)]
        head_init = None
        if start_from is not None:
            layers, head_init = start_from.layers, (start_from.weight, start_from.bias)
        branch, figures = train_branch(cache, rows, targets, len(classes), layers, heads=lean.heads, eps=lean.eps,
                                       tap=tap, spec=spec, progress=progress, head_init=head_init)
        self.embedder.keep_layer(tap)
        self._branch = branch
        self._meta["branch"] = {"file": BRANCH_FILE, "tap": tap, "depth": branch.depth,
                                "embedder": getattr(self.embedder, "name", None), **encode, **figures}
        if init is not None:
            self._meta["branch"]["init"] = _describe_start(Path(init))
        return self

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @property
    def info(self) -> dict[str, Any]:
        return dict(self._meta)

    @property
    def uses_text(self) -> bool:
        """Whether :meth:`predict` needs the texts too (the head has word features, or the
        branch reads the texts' token states)."""
        return self._branch is not None or (self._head is not None and self._head.uses_text)

    @property
    def branch(self) -> SentimentBranch | None:
        """The branch in use (None: the head on the frozen embedding decides)."""
        return self._branch

    def _proba(self, vectors: np.ndarray, texts: Sequence[str] | None) -> np.ndarray:
        if self._head is None:
            raise InputError("the sentiment classifier is not trained: call fit() or load() first")
        matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        self._head.check_inputs(matrix, texts)
        if self._branch is not None and texts is not None:
            return self._branch_proba(list(texts))
        return self._head.proba(matrix, texts)

    def _branch_proba(self, texts: list[str]) -> np.ndarray:
        """The branch's calibrated probabilities. In float32, texts of similar length share
        a batch; with int8 kernels each text runs alone, as a turn does (their activation
        scale is per call, so a batch would shift the scores a little)."""
        assert self._branch is not None
        batch_size = 1 if self._branch.int8 else 64
        out = np.zeros((len(texts), len(self._labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        from agent.models.fastquant import intra_op_threads

        # One turn is a few small matrix products: one thread, as the embedder does (a
        # second one spin-waits on busy cores).
        with intra_op_threads(1 if len(texts) <= 4 else None):
            for begin in range(0, len(texts), batch_size):
                rows = order[begin:begin + batch_size]
                states = self.embedder.layer_states([texts[i] for i in rows], self._branch.tap)
                out[rows] = softmax(self._branch.logits(states) / np.float32(self._branch.temperature))
        return out

    def _signed(self, proba: np.ndarray) -> np.ndarray:
        return proba[:, self._labels.index("positive")] - proba[:, self._labels.index("negative")]

    def scores(self, vectors: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Signed polarity in [-1, 1] per vector: P(positive) - P(negative)."""
        return self._signed(self._proba(vectors, texts))

    def predict(self, vectors: np.ndarray, texts: Sequence[str] | None = None) -> list[Prediction]:
        """Label and signed score per vector: neutral inside the band (or by argmax when
        the head has a neutral class), else the sign. ``texts`` are required when
        :attr:`uses_text`."""
        proba = self._proba(vectors, texts)
        signed = self._signed(proba)
        neutral = self._labels.index("neutral") if "neutral" in self._labels else None
        out = []
        for row, score in enumerate(signed):
            label = "positive" if score > 0 else "negative"
            if abs(score) < self.neutral_band or (neutral is not None and proba[row].argmax() == neutral):
                label = "neutral"
            alternatives = [(name, float(proba[row, i])) for i, name in enumerate(self._labels)]
            out.append(Prediction(label, float(score), alternatives))
        return out

    def save(self, folder: str | Path) -> Path:
        if self._head is None:
            raise InputError("the sentiment classifier is not trained: call fit() before save()")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._head.save(folder / "head.npz")
        if self._branch is not None:
            self._branch.save(folder / BRANCH_FILE, base=_base_layers(self.embedder))
        elif (folder / BRANCH_FILE).exists():
            (folder / BRANCH_FILE).unlink()  # a stale branch must not outlive the head it came with
        write_meta(folder, self._meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path, embedder: Any = None, *, neutral_band: float = DEFAULT_NEUTRAL_BAND,
             branch: bool = True) -> SentimentClassifier:
        """Load a folder; its branch runs when it has one, ``branch`` is True and the
        embedder can hand over the branch's layer, else the head does."""
        folder = Path(folder)
        meta = read_meta(folder, cls.kind)
        if embedder is not None:
            check_embedder(meta, embedder, folder)
        clf = cls(embedder, neutral_band=neutral_band)
        clf._head = Head.load(folder / "head.npz")
        clf._labels = list(meta["labels"])
        clf._meta = meta
        if branch and (folder / BRANCH_FILE).is_file():
            clf._branch = _attach_branch(folder, meta, embedder)
        return clf


def _targets(texts: Sequence[str], labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The classes present (in :data:`POLARITIES` order) and each text's class index."""
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
    polarities = [normalize_sentiment_label(label) for label in labels]
    classes = [p for p in POLARITIES if p in set(polarities)]
    if "negative" not in classes or "positive" not in classes:
        raise InputError(f"sentiment data needs both negative and positive examples; found only {classes}")
    return classes, np.asarray([classes.index(p) for p in polarities], dtype=np.int64)


def _start_branch(folder: Path, tap: int, classes: list[str], base: BaseLayers) -> SentimentBranch:
    """The branch of ``folder`` to go on training: it must read the same tap and predict
    the same classes."""
    meta = read_meta(folder, SentimentClassifier.kind)
    if not (folder / BRANCH_FILE).is_file():
        raise InputError(f"{folder} has no {BRANCH_FILE} to start from: drop --branch-init, or name a folder "
                         "written by `llmos train sentiment --branch K`")
    branch = SentimentBranch.load(folder / BRANCH_FILE, base=base)
    if branch.tap != tap or list(meta["labels"]) != classes:
        raise InputError(f"the branch in {folder} reads layer {branch.tap} and predicts {meta['labels']}; this "
                         f"training needs layer {tap} and {classes}: match --branch and the labels, or drop "
                         "--branch-init")
    return branch


def _describe_start(folder: Path) -> dict[str, Any]:
    """What a branch trained with ``init`` started from (its examples and training seconds,
    so the total cost of the chain stays on record)."""
    meta = read_meta(folder, SentimentClassifier.kind).get("branch", {})
    return {"folder": str(folder), **{k: meta[k] for k in ("examples", "train_cpu_seconds", "encode_cpu_seconds")
                                      if k in meta}}


def _attach_branch(folder: Path, meta: dict[str, Any], embedder: Any) -> SentimentBranch | None:
    """The folder's branch, when ``embedder`` is the one it was trained on and can keep its
    tap layer; None (the head decides) otherwise."""
    trained_on = meta.get("branch", {}).get("embedder", meta.get("embedder"))
    name = getattr(embedder, "name", None)
    if name != trained_on or not hasattr(embedder, "keep_layer"):
        log.info("the sentiment branch in %s was trained on %r's layers, the embedder is %r: using the head",
                 folder, trained_on, name)
        return None
    try:
        branch = SentimentBranch.load(folder / BRANCH_FILE, base=_base_layers(embedder))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cannot read the sentiment branch in %s (%s): using the head", folder, exc)
        return None
    if not embedder.keep_layer(branch.tap):
        log.info("the embedder %r cannot hand over layer %d (a GPU, int8, or not a BERT model): the sentiment "
                 "head runs instead of the branch", name, branch.tap)
        return None
    return branch


def _base_layers(embedder: Any) -> BaseLayers | None:
    """The encoder layers a branch is stored as a change from (None: store it whole)."""
    lean = embedder.lean_encoder() if hasattr(embedder, "lean_encoder") else None
    return None if lean is None else lean.layer_weights
