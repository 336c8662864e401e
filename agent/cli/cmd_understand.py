"""``llmos train intents|sentiment`` and ``llmos eval intents|sentiment``.

Data files are CSV/TSV, JSONL, Rasa NLU YAML or JSON splits (``FILE#split``,
``FILE#a+b``); see :mod:`agent.understand.data`. Progress goes to stderr, so ``--json``
output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.models.embedder import DEFAULT_EMBEDDER

__all__ = ["register"]

_SHIPPED_BRANCH = 3
"""Depth of the branch the shipped sentiment model was trained with (for the help text)."""


def register(groups: Any) -> None:
    """Add this module's commands to the parser groups."""
    p = groups.train.add_parser("intents", help="train an intent classifier on labelled texts",
                                description="Train an intent head on the sentence embeddings of DATA and save it.")
    p.add_argument("data", metavar="DATA", nargs="+",
                   help="CSV/TSV, JSONL, Rasa nlu.yml or FILE.json#split[+split]; several are joined")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the classifier into")
    _common(p)
    p.set_defaults(func=_train_intents)

    p = groups.train.add_parser("sentiment", help="train a sentiment classifier (e.g. on SST-2)",
                                description="Train a sentiment head; labels negative/neutral/positive or 0/1.")
    p.add_argument("data", metavar="DATA", nargs="+", help="CSV/TSV, JSONL, Rasa nlu.yml or FILE.json#split")
    p.add_argument("--neutral", metavar="DATA", action="append", default=[],
                   help="labelled texts whose labels are ignored: every text is a neutral example "
                        "(e.g. CLINC150's assistant requests); repeatable")
    p.add_argument("--neutral-drop", metavar="LABEL", action="append", default=[],
                   help="skip the --neutral rows with this label (e.g. thank_you: thanks are positive)")
    p.add_argument("--neutral-per-label", type=int, default=0, metavar="N",
                   help="take at most N --neutral examples of each label (default: all)")
    p.add_argument("--upweight", metavar="DATA", action="append", default=[],
                   help="a small in-domain data set that should count more; repeatable")
    p.add_argument("--upweight-times", type=int, default=5, metavar="N",
                   help="how many times each --upweight example is repeated (default: %(default)s)")
    p.add_argument("--branch", type=int, default=0, metavar="K",
                   help=f"also fine-tune a branch of the embedder's top K layers (the shipped model: "
                        f"K={_SHIPPED_BRANCH}; tens of CPU-minutes on SST-2); 0: the head on the frozen "
                        "embedding only, seconds (default: %(default)s)")
    p.add_argument("--branch-epochs", type=int, default=None, metavar="N", help="passes over the data (default: 3)")
    p.add_argument("--branch-lr", type=float, default=None, metavar="LR", help="peak learning rate (default: 1e-4)")
    p.add_argument("--branch-head-lr", type=float, default=None, metavar="LR",
                   help="peak learning rate of the branch's linear layer (default: 2e-3)")
    p.add_argument("--branch-init", metavar="DIR",
                   help="go on training the branch of this folder (e.g. the shipped model) instead of starting "
                        "from the embedder's own layers: one epoch on new data costs minutes, not an hour")
    p.add_argument("--exclude", metavar="DATA", action="append", default=[],
                   help="drop training rows whose text is in DATA, so a benchmark stays unseen (VADER's movie "
                        "snippets share sentences with SST-2's dev set); repeatable")
    _polar(p)
    p.add_argument("--rated-neutral", type=float, default=0.0, metavar="V",
                   help="rated files: sentences with |valence| < V are neutral examples; the ones between V and "
                        "--polar are left out (default: %(default)s: only the polar sentences are used)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the classifier into")
    _common(p)
    p.set_defaults(func=_train_sentiment)

    p = groups.eval.add_parser("intents", help="train on one data set, report accuracy/F1/out-of-scope on another",
                               description="Train an intent head on --train and evaluate it on --test: accuracy, "
                                           "macro-F1, out-of-scope precision/recall, training seconds, per-intent table.")
    p.add_argument("--train", required=True, metavar="DATA")
    p.add_argument("--test", required=True, metavar="DATA")
    p.add_argument("--png", metavar="FILE", help="also draw the confusion matrix into this PNG")
    p.add_argument("--rows", type=int, default=30, help="per-intent rows to print, worst first (0: all)")
    _common(p)
    p.set_defaults(func=_eval_intents)

    p = groups.eval.add_parser("sentiment", help="accuracy and macro-F1 of a sentiment head",
                               description="Evaluate the shipped sentiment head (or --model, or one trained on "
                                           "--train) on --test. A rated file (a 'valence' column, e.g. VADER's "
                                           "snippets; FILE#heldout for its held-out part) reports accuracy on its "
                                           "clearly polar sentences, a neutral label counting as wrong, and how "
                                           "many of them came out neutral.")
    p.add_argument("--test", required=True, metavar="DATA", nargs="+",
                   help="labelled texts; several rated files are read as one set")
    _polar(p)
    p.add_argument("--exclude", metavar="DATA", action="append", default=[],
                   help="leave out test sentences that also occur in DATA (e.g. SST-2's training set); repeatable")
    p.add_argument("--neutral-band", type=float, default=None, metavar="B",
                   help="label scores in (-B, B) neutral (default: the agent's understanding.neutral_band)")
    p.add_argument("--train", metavar="DATA", help="train a head on this first instead of the shipped one")
    p.add_argument("--model", metavar="DIR", help="a folder from `llmos train sentiment`")
    p.add_argument("--no-branch", action="store_true",
                   help="evaluate the folder's head on the frozen embedding, not its fine-tuned branch")
    p.add_argument("--png", metavar="FILE", help="also draw the confusion matrix into this PNG")
    _common(p)
    p.set_defaults(func=_eval_sentiment)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                   help="sentence embedder (must match the agent's memory.embedder); default: %(default)s")


def _polar(p: argparse.ArgumentParser) -> None:
    p.add_argument("--polar", type=float, default=None, metavar="V",
                   help="rated files (a 'valence' column, -4..+4): sentences with |valence| >= V are polar, "
                        "the others neutral (default: 0.5)")


def _polar_of(args: argparse.Namespace) -> float:
    from agent.understand.sentiment_data import POLAR_VALENCE

    return POLAR_VALENCE if args.polar is None else float(args.polar)


def _embedder(name: str) -> Any:
    from agent.models.embedder import SentenceEmbedder

    return SentenceEmbedder(name)


class _Progress:
    """A one-line progress display on stderr (silent when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        if self.tty:
            end = "\n" if fraction >= 1.0 else ""
            print(f"\r{self.label}: {fraction:4.0%} {message}   ", end=end, file=sys.stderr, flush=True)


def _print(obj: dict[str, Any], as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2) if as_json else text)


def _train_intents(args: argparse.Namespace) -> int:
    from agent.understand.data import Dataset, load_dataset
    from agent.understand.intents import IntentClassifier

    parts = [load_dataset(spec) for spec in args.data]
    texts = [t for part in parts for t in part.texts]
    labels = [label for part in parts for label in part.labels]
    data = Dataset(texts, labels, " + ".join(args.data)).require_trainable()
    clf = IntentClassifier(_embedder(args.embedder)).fit(data.texts, data.labels, progress=_Progress("embedding"))
    folder = clf.save(args.output)
    info = clf.info
    summary = {
        "output": str(folder), "examples": info["examples"], "intents": len(info["labels"]),
        "oos_label": info["oos_label"], "threshold": round(clf.threshold, 4),
        "similarity_threshold": round(clf.similarity_threshold, 4),
        "train_seconds": info["train_seconds"], "embed_seconds": info["embed_seconds"],
    }
    text = (f"trained {summary['intents']} intents on {summary['examples']} examples -> {folder}\n"
            f"head {summary['train_seconds']:.1f}s (+{summary['embed_seconds']:.1f}s embedding); "
            f"out-of-scope below confidence {summary['threshold']:.3f} or similarity "
            f"{summary['similarity_threshold']:.3f} -> {summary['oos_label']!r}")
    _print(summary, args.json, text)
    return 0


def _train_sentiment(args: argparse.Namespace) -> int:
    from collections import Counter

    from agent.understand.sentiment import SentimentClassifier, normalize_sentiment_label
    from agent.understand.sentiment_data import sentiment_training_data

    data = sentiment_training_data(args.data, neutral=args.neutral, neutral_drop=args.neutral_drop,
                                   neutral_per_label=args.neutral_per_label, upweight=args.upweight,
                                   upweight_times=args.upweight_times, polar=_polar_of(args),
                                   rated_neutral=args.rated_neutral,
                                   exclude=args.exclude).require_trainable()
    clf = SentimentClassifier(_embedder(args.embedder))
    if args.branch:
        from dataclasses import replace

        from agent.understand.branch_train import BranchSpec

        spec = replace(BranchSpec(depth=args.branch), **{k: v for k, v in (
            ("epochs", args.branch_epochs), ("lr", args.branch_lr), ("head_lr", args.branch_head_lr))
            if v is not None})
        clf.fit_branch(data.texts, data.labels, spec, progress=_Progress("branch"), init=args.branch_init)
    else:
        clf.fit(data.texts, data.labels, progress=_Progress("embedding"))
    folder = clf.save(args.output)
    info = clf.info
    counts = Counter(normalize_sentiment_label(label) for label in data.labels)
    summary = {"output": str(folder), "examples": info["examples"], "labels": info["labels"], "counts": dict(counts),
               "train_seconds": info["train_seconds"], "embed_seconds": info["embed_seconds"]}
    text = (f"trained sentiment ({', '.join(info['labels'])}) on {info['examples']} examples -> {folder}\n"
            f"head {info['train_seconds']:.1f}s (+{info['embed_seconds']:.1f}s embedding)")
    if "branch" in info:
        branch = info["branch"]
        summary["branch"] = {k: branch.get(k) for k in ("depth", "tap", "encode_seconds", "encode_cpu_seconds",
                                                        "train_seconds", "train_cpu_seconds", "heldout_accuracy")}
        text += (f"\nbranch of {branch['depth']} layers: encoding {branch['encode_seconds']:.0f}s "
                 f"({branch['encode_cpu_seconds']:.0f} CPU-s), training {branch['train_seconds']:.0f}s "
                 f"({branch['train_cpu_seconds']:.0f} CPU-s), held-out accuracy {branch.get('heldout_accuracy')}")
    _print(summary, args.json, text)
    return 0


def _eval_intents(args: argparse.Namespace) -> int:
    from agent.understand.data import load_dataset
    from agent.understand.evaluate import evaluate_intents
    from agent.understand.metrics import format_report, save_confusion_png

    train, test = load_dataset(args.train), load_dataset(args.test)
    report, _clf = evaluate_intents(train, test, _embedder(args.embedder), progress=_Progress("embedding"))
    if args.png:
        report.extra["png"] = str(save_confusion_png(report, args.png, title="intents"))
    text = format_report(report, title=f"intents: train {args.train}, test {args.test}",
                         max_rows=args.rows or None)
    _print(report.to_json(), args.json, text)
    return 0


def _eval_sentiment(args: argparse.Namespace) -> int:
    from agent.understand.data import combine, load_dataset
    from agent.understand.evaluate import evaluate_sentiment
    from agent.understand.metrics import format_report, save_confusion_png
    from agent.understand.sentiment import SentimentClassifier
    from agent.understand.sentiment_data import (
        combine_rated,
        drop_texts,
        evaluate_rated,
        is_rated,
        load_rated,
        text_keys,
    )

    embedder = _embedder(args.embedder)
    rated = [is_rated(spec) for spec in args.test]
    if any(rated) and not all(rated):
        from agent.errors import InputError

        raise InputError("--test mixes rated files (a 'valence' column) with labelled ones: evaluate them "
                         "in separate runs")
    if args.train:
        data = load_dataset(args.train).require_trainable()
        clf = SentimentClassifier(embedder).fit(data.texts, data.labels, progress=_Progress("embedding"))
        source = args.train
    else:
        from agent.understand.defaults import shipped_dir

        folder = args.model or shipped_dir("sentiment")
        clf = SentimentClassifier.load(folder, embedder, branch=not args.no_branch)
        source = str(folder) + (f" (branch of {clf.branch.depth} layers)" if clf.branch is not None else " (head)")
    if args.neutral_band is not None:
        clf.neutral_band = args.neutral_band
    seen = text_keys(args.exclude)
    title = f"sentiment: {source} on {' + '.join(args.test)}"
    if all(rated):
        rated_set = combine_rated([load_rated(spec) for spec in args.test]).without(seen)
        report = evaluate_rated(clf, rated_set, embedder, polar=_polar_of(args), progress=_Progress("embedding"))
        title += f" (|valence| >= {_polar_of(args)})"
    else:
        test = drop_texts(combine([load_dataset(spec) for spec in args.test]), seen)
        report = evaluate_sentiment(clf, test, embedder, progress=_Progress("embedding"))
    if args.exclude:
        report.extra["excluded"] = args.exclude
    if args.png:
        report.extra["png"] = str(save_confusion_png(report, args.png, title="sentiment"))
    text = format_report(report, title=title)
    if all(rated):
        extra = report.extra
        text += (f"\npolar sentences: {extra['polar_rows']}, labelled neutral: {extra['polar_called_neutral']}; "
                 f"sign accuracy {extra['polar_sign_accuracy']:.4f}; rated near 0: {extra['near_neutral_rows']}, "
                 f"labelled neutral: {extra['near_neutral_called_neutral']}")
    _print(report.to_json(), args.json, text)
    return 0
