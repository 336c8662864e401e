"""Answer a question from passages: extractive, generative, or both combined."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.prompts.fence import DATA_RULE, fenced
from skills.qa.extract import Span, best_span, ground
from skills.qa.retrieve import Passage
from skills.text import ask_model, first_line_done

__all__ = ["Answer", "answer_from", "generate_answer", "combine", "QA_SYSTEM"]

QA_SYSTEM = ("You answer questions using only the numbered passages. Reply with the short answer only "
             "(a few words, copied from the passages). If the passages do not contain the answer, reply: "
             f"I don't know. {DATA_RULE}")

_UNKNOWN = re.compile(r"\b(i don'?t know|not (mentioned|stated|given|provided)|no information|cannot answer)\b",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    """An answer, which passages support it (0-based), and how it was made."""

    text: str
    cited: tuple[int, ...]
    mode: str
    """`extractive`, `generative`, `grounded` (generated, then found in a passage) or `none`."""
    span: Span | None = None

    @property
    def abstained(self) -> bool:
        return self.mode == "none"


def _prompt(question: str, passages: Sequence[Passage]) -> str:
    """The passages inside the reference fence (untrusted: a document may carry instructions),
    then the question."""
    blocks = "\n\n".join(f"[{n}] {p.text}" for n, p in enumerate(passages, 1))
    return f"{fenced(blocks, 'Passages:')}\n\nQuestion: {question}\nShort answer:"


def generate_answer(backend: Any, question: str, passages: Sequence[Passage], max_tokens: int) -> str:
    """The model's own answer (one greedy call, first line, citation marks removed)."""
    raw = ask_model(backend, QA_SYSTEM, _prompt(question, passages), max_new_tokens=max_tokens, stop=("\n\n",),
                    until=first_line_done)
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(short )?answer:\s*", "", line, flags=re.IGNORECASE)
    return re.sub(r"\s*\[\d+\]", "", line).strip()


def combine(question: str, passages: Sequence[Passage], generated: str | None) -> Answer:
    """Ground a generated answer on a passage span; fall back to the extractive span.

    A generated answer that no passage supports (a small model's invention) is dropped,
    so every combined answer is a quote that can be cited.
    """
    texts = [p.text for p in passages]
    if generated and not _UNKNOWN.search(generated):
        span = ground(generated, texts, question=question)
        if span is not None:
            return Answer(span.text, (span.passage,), "grounded", span)
    return extractive(question, passages)


def extractive(question: str, passages: Sequence[Passage]) -> Answer:
    span = best_span(question, [p.text for p in passages])
    if span is None:
        return Answer("", (), "none")
    return Answer(span.text, (span.passage,), "extractive", span)


def answer_from(question: str, passages: Sequence[Passage], *, mode: str, backend: Any = None,
                max_tokens: int = 48) -> Answer:
    """Answer ``question`` from ``passages`` (already selected and ordered) in ``mode``."""
    if not passages:
        return Answer("", (), "none")
    if mode == "extractive" or backend is None:
        return extractive(question, passages)
    generated = generate_answer(backend, question, passages, max_tokens)
    if mode == "generative":
        if not generated or _UNKNOWN.search(generated):
            return Answer("", (), "none")
        span = ground(generated, [p.text for p in passages], question=question)
        cited = (span.passage,) if span is not None else (0,)  # unsupported: cite the best passage
        return Answer(generated, cited, "generative", span)
    return combine(question, passages, generated)
