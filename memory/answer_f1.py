"""Answering LoCoMo questions from recalled memories, and LoCoMo's token F1.

The F1 follows the LoCoMo evaluation script: answers are lower-cased, stripped of
punctuation and articles, Porter-stemmed and compared as bags of tokens; for multi-hop
questions the reference is split on commas and each part is matched to its best
sub-answer. The stemmer is a small Porter implementation (no nltk dependency).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["normalize_answer", "token_f1", "answer_prompt", "model_answerer"]

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalize_answer(text: str) -> str:
    text = str(text).lower().replace(",", "")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _strip(word: str, rules: tuple[tuple[str, str], ...]) -> str:
    for suffix, repl in rules:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def _stem(word: str) -> str:
    # Porter's steps 1a (plurals) then 1b (-ed, -ing): the suffixes that matter for short
    # answers ("paintings" ~ "painting" ~ "paint").
    if not word.endswith("ss"):
        word = _strip(word, (("sses", "ss"), ("ies", "i"), ("s", "")))
    return _strip(word, (("eed", "ee"), ("ing", ""), ("ed", "")))


def _tokens(text: str) -> list[str]:
    return [_stem(w) for w in normalize_answer(text).split()]


def _f1(prediction: str, reference: str) -> float:
    pred, ref = _tokens(prediction), _tokens(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str, *, multi_hop: bool = False) -> float:
    """LoCoMo's answer F1 (for multi-hop, the mean best match of each comma-separated part)."""
    if not multi_hop:
        return _f1(prediction, reference)
    parts = [p for p in str(reference).split(",") if p.strip()]
    preds = [p for p in str(prediction).split(",") if p.strip()] or [str(prediction)]
    if not parts:
        return 0.0
    return sum(max(_f1(p, r) for p in preds) for r in parts) / len(parts)


def answer_prompt(question: str, hits: Sequence[Any], max_chars: int = 1600) -> str:
    """A short-answer prompt: the recalled turns as reference material, then the question."""
    lines, used = [], 0
    for hit in hits:
        text = str(hit.text).replace("\n", " ")
        if used + len(text) > max_chars:
            break
        lines.append(f"- {text}")
        used += len(text)
    memory = "\n".join(lines) or "- (nothing recalled)"
    return ("Reference material from earlier conversations (may be incomplete):\n"
            f"{memory}\n\nAnswer the question in a few words, using the reference material.\n"
            f"Question: {question}\nShort answer:")


def model_answerer(model: Any, max_new_tokens: int = 24) -> Any:
    """``answer(question, hits) -> text`` with an ``agent.load_model`` model."""

    def answer(question: str, hits: Sequence[Any]) -> str:
        text = model.generate_text(answer_prompt(question, hits), max_new_tokens=max_new_tokens)
        return str(text).strip().split("\n")[0]

    return answer
