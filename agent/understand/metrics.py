"""Classification figures: accuracy, macro-F1, out-of-scope precision/recall, a per-label
table and a confusion-matrix image.

Plain numpy, so evaluating needs no scikit-learn import. ``in_scope_accuracy`` follows
the CLINC150 paper: over the in-scope test examples, a prediction counts only when it is
the right intent, so rejecting an in-scope query as out-of-scope is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LabelStats", "Report", "evaluate_labels", "format_report", "save_confusion_png"]


@dataclass
class LabelStats:
    """Precision, recall and F1 of one label, with its number of true examples."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    """Everything ``llmos eval`` prints; ``to_json()`` is the ``--json`` object."""

    accuracy: float
    macro_f1: float
    in_scope_accuracy: float | None
    oos_precision: float | None
    oos_recall: float | None
    n: int
    per_label: list[LabelStats]
    labels: list[str]
    confusion: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_precision": self.oos_precision,
            "oos_recall": self.oos_recall,
            "n": self.n,
        }
        out.update(self.extra)
        out["per_label"] = [asdict(s) for s in self.per_label]
        return out


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def evaluate_labels(gold: Sequence[str], predicted: Sequence[str], oos_label: str | None = None) -> Report:
    """Compare predictions with gold labels. ``oos_label`` names the out-of-scope class
    (when the test data has one), which gets its own precision and recall."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    labels = sorted(set(gold) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g], index[p]] += 1
    true_pos = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    per_label = []
    for i, label in enumerate(labels):
        precision = _ratio(true_pos[i], predicted_count[i])
        recall = _ratio(true_pos[i], support[i])
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_label.append(LabelStats(label, precision, recall, f1, int(support[i])))
    # Macro-F1 over the labels the test set has; a label only ever predicted is a
    # false positive elsewhere, already counted in the others' precision.
    scored = [s for s in per_label if s.support > 0]
    macro_f1 = float(np.mean([s.f1 for s in scored])) if scored else 0.0
    accuracy = _ratio(true_pos.sum(), confusion.sum())
    in_scope = oos_p = oos_r = None
    if oos_label is not None:
        gold_arr, pred_arr = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
        in_mask = gold_arr != oos_label
        in_scope = _ratio(float((pred_arr[in_mask] == gold_arr[in_mask]).sum()), float(in_mask.sum()))
        if oos_label in index:
            stats = per_label[index[oos_label]]
            oos_p, oos_r = stats.precision, stats.recall
        else:
            oos_p, oos_r = 0.0, 0.0
    return Report(accuracy, macro_f1, in_scope, oos_p, oos_r, len(gold), per_label, labels, confusion)


def format_report(report: Report, *, title: str = "", max_rows: int | None = None) -> str:
    """A human-readable summary and per-label table (worst F1 first when truncated)."""
    lines = [title] if title else []
    lines.append(f"examples           {report.n}")
    lines.append(f"accuracy           {report.accuracy:.4f}")
    if report.in_scope_accuracy is not None:
        lines.append(f"in-scope accuracy  {report.in_scope_accuracy:.4f}")
    lines.append(f"macro-F1           {report.macro_f1:.4f}")
    if report.oos_precision is not None:
        lines.append(f"oos precision      {report.oos_precision:.4f}")
        lines.append(f"oos recall         {report.oos_recall:.4f}")
    for key, value in report.extra.items():
        if isinstance(value, float):
            lines.append(f"{key.replace('_', ' '):<18} {value:.3f}")
    rows = sorted(report.per_label, key=lambda s: (s.f1, s.label))
    if max_rows is not None and len(rows) > max_rows:
        lines.append(f"\nper label (the {max_rows} lowest F1 of {len(rows)}):")
        rows = rows[:max_rows]
    else:
        rows = sorted(report.per_label, key=lambda s: s.label)
        lines.append("\nper label:")
    width = max([len(s.label) for s in rows] + [5])
    lines.append(f"  {'label':<{width}}  precision  recall     f1  support")
    for s in rows:
        lines.append(f"  {s.label:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:7d}")
    return "\n".join(lines)


def save_confusion_png(report: Report, path: str | Path, *, title: str = "confusion matrix") -> Path:
    """Draw the row-normalised confusion matrix (rows: gold, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = report.confusion.astype(float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(report.labels)
    size = min(max(6.0, 0.18 * n + 3), 40.0)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.arange(n)
    fontsize = 8 if n <= 40 else max(3, int(600 / n))
    ax.set_xticks(ticks, labels=report.labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, labels=report.labels, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"{title} (accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f})")
    if n <= 20:
        # Small matrices get the counts written in, for people who prefer numbers.
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    color = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
