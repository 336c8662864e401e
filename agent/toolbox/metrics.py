"""Reference-based scores of generated replies: BLEU and chrF (sacrebleu) and ROUGE-L.

Corpus-level BLEU and chrF as sacrebleu computes them (its default tokenization, so the
figures are comparable with published ones); ROUGE-L is the mean F-measure over replies
(Google's ``rouge-score``, with stemming).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["reference_scores", "format_table"]


def reference_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``{"bleu", "chrf", "rougeL"}`` on a 0-100 scale for aligned hypotheses and references."""
    if len(hypotheses) != len(references):
        raise ValueError("hypotheses and references must be aligned")
    if not hypotheses:
        return {"bleu": float("nan"), "chrf": float("nan"), "rougeL": float("nan")}
    import sacrebleu
    from rouge_score import rouge_scorer

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references, strict=True)]
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2),
            "rougeL": round(100.0 * sum(rouge) / len(rouge), 2)}


def format_table(rows: Sequence[tuple[str, object]], title: str = "") -> str:
    """A two-column text table (metric, value) for the terminal."""
    width = max((len(name) for name, _ in rows), default=0)
    lines = [title] if title else []
    for name, value in rows:
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines)
