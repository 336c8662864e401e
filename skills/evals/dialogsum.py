"""DialogSum for the ``/summarize`` skill: ROUGE-1/2/L (Google's ``rouge-score``, stemmed)
against the three reference summaries of each dialogue.

Two aggregations are reported: ``best`` (per dialogue, the best-matching reference, as
``rouge_score``'s ``score_multi`` does) and ``mean`` (the average over the references).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.errors import InputError, SkillError
from skills.config import SummarizeConfig
from skills.evals.common import Stopwatch, progress
from skills.summarize.mapreduce import summarize_text

__all__ = ["load_dialogsum", "rouge_scores", "run_dialogsum"]

_TYPES = ("rouge1", "rouge2", "rougeL")


def load_dialogsum(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    refs = [row[k] for k in ("summary1", "summary2", "summary3", "summary") if row.get(k)]
                    rows.append({"id": row.get("fname", str(len(rows))), "dialogue": row["dialogue"], "refs": refs})
                if limit and len(rows) >= limit:
                    break
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read DialogSum file {path}: {exc}; pass dialogsum.test.jsonl") from None
    return rows


def _scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise SkillError("ROUGE needs the rouge-score package: pip install rouge-score") from exc
    return rouge_scorer.RougeScorer(list(_TYPES), use_stemmer=True)


def rouge_scores(predictions: list[str], references: list[list[str]]) -> dict[str, dict[str, float]]:
    """Mean ROUGE F-measures (x100), ``best`` and ``mean`` over each item's references."""
    scorer = _scorer()
    best = {t: 0.0 for t in _TYPES}
    mean = {t: 0.0 for t in _TYPES}
    for pred, refs in zip(predictions, references, strict=False):
        per_ref = [scorer.score(ref, pred) for ref in refs]
        for t in _TYPES:
            values = [s[t].fmeasure for s in per_ref]
            best[t] += max(values)
            mean[t] += sum(values) / len(values)
    n = max(len(predictions), 1)
    return {"best": {t: round(100 * v / n, 2) for t, v in best.items()},
            "mean": {t: round(100 * v / n, 2) for t, v in mean.items()}}


def run_dialogsum(path: str | Path, *, backend: Any, limit: int | None = 100, config: SummarizeConfig | None = None,
                  show_progress: bool = False, keep_predictions: int = 3) -> dict[str, Any]:
    """Summarise each dialogue with the skill's own path and score it."""
    config = config or SummarizeConfig()
    rows = load_dialogsum(path, limit)
    clock = Stopwatch()
    predictions = []
    for row in progress(rows, len(rows), "summarizing", show_progress):
        with clock.measure():
            text = "".join(summarize_text(backend, row["dialogue"], kind="dialogue",
                                          max_summary_tokens=min(config.max_summary_tokens, 96),
                                          chunk_tokens=config.chunk_tokens))
        predictions.append(" ".join(text.split()))
    scores = rouge_scores(predictions, [r["refs"] for r in rows])
    return {"dataset": str(path), "dialogues": len(rows), "model": getattr(backend, "name", "?"), **scores,
            "timing": {"median_ms_per_dialogue": clock.median_ms(), "total_s": clock.total_s()},
            "examples": [{"id": r["id"], "prediction": p, "reference": r["refs"][0]}
                         for r, p in list(zip(rows, predictions, strict=False))[:keep_predictions]]}
