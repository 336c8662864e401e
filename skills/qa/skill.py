"""The built-in ``/qa`` skill: answer from the knowledge base and the user's memories, cite
sources as [1], [2] with the list after the answer, or say it does not know."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from agent.errors import SkillError
from skills.base import SkillRequest
from skills.config import QAConfig, SkillsConfig
from skills.qa.answer import Answer, answer_from
from skills.qa.retrieve import Passage, cite_lines, retrieve, select_passages
from skills.text import model_parameters

__all__ = ["QASkill", "format_answer", "resolve_mode", "NO_ANSWER"]

NO_ANSWER = ("I don't know: I found nothing relevant to that in the knowledge base or in what you told me. "
             "Add documents with `llmos kb add PATH`, or rephrase the question.")


def format_answer(answer: Answer, passages: Sequence[Passage]) -> tuple[str, list[Passage]]:
    """The reply text (answer, citation marks, source list) and the cited passages."""
    cited = [passages[i] for i in answer.cited if i < len(passages)]
    span = answer.span
    if span is not None and span.passage < len(passages) and passages[span.passage] in cited:
        # the quoted answer's own lines, not the whole passage's
        quoted = passages[span.passage]
        narrowed = replace(quoted, citation=cite_lines(quoted, span.start, span.end))
        cited = [narrowed if p is quoted else p for p in cited]
    marks = " ".join(f"[{n}]" for n in range(1, len(cited) + 1))
    text = answer.text.strip().rstrip(".")
    lines = [f"{text}. {marks}".strip(), "", "Sources:"]
    lines += [f"[{n}] {p.citation}" for n, p in enumerate(cited, 1)]
    return "\n".join(lines), cited


def resolve_mode(mode: str, parameters: int | None) -> str:
    """``auto`` -> extractive for the smallest local models, combined for the rest.

    Measured on 50 SQuAD v1.1 dev questions (``llmos eval qa --limit 50``, docs/models.md):
    SmolLM2-135M F1 18.9 extractive against 17.8 combined; Qwen2.5-Coder-0.5B 18.9 against
    39.2. Hence the line at 300M parameters."""
    if mode != "auto":
        return mode
    return "extractive" if parameters is not None and parameters < EXTRACTIVE_BELOW else "combined"


EXTRACTIVE_BELOW = 300_000_000
"""Models with fewer parameters answer ``auto`` questions extractively."""


class QASkill:
    """Question answering with citations (``/qa``)."""

    name = "qa"
    description = ("Answer a question from the knowledge base and your memories, citing sources; "
                   "says so when it does not know.")
    intents: tuple[str, ...] = ("question", "qa", "faq")
    command: str | None = "qa"

    def __init__(self, config: SkillsConfig | None = None) -> None:
        self.config: QAConfig = (config or SkillsConfig()).qa

    def accepts(self, text: str, *, memory: Any = None, user_id: str | None = None, vector: Any = None,
                **_: Any) -> bool:
        """For a turn routed here by its intent (not ``/qa``): does the knowledge base (or the
        user's memory) hold a passage above ``min_similarity`` for it? If not, chat answers:
        "What is the capital of France?" to a support bot whose documents are about refunds
        deserves "Paris", not "I don't know"."""
        if memory is None or not text.strip():
            return False
        return bool(retrieve(memory, text.strip(), user_id=user_id, vector=vector, config=self.config))

    def run(self, request: SkillRequest) -> Iterator[str]:
        question = request.text.strip()
        if not question or question.startswith("/"):
            raise SkillError("ask a question after /qa, e.g. /qa what is the refund policy?")
        if request.memory is None:
            raise SkillError("question answering needs the memory store: set memory.enabled: true and add "
                             "documents with `llmos kb add PATH`")
        cfg = self.config
        # The turn's vector embeds the whole message; after a slash command that includes
        # "/qa", which pulls the similarity down: embed the bare question then.
        vector = request.vector if request.command is None else None
        found = retrieve(request.memory, question, user_id=request.user_id, vector=vector, config=cfg)
        best = found[0].similarity if found else None
        request.extra["qa"] = {"mode": cfg.mode, "best_similarity": best, "threshold": cfg.min_similarity}
        if not found:
            request.extra["qa"]["abstained"] = True
            yield NO_ANSWER
            return
        params = model_parameters(request.backend)
        mode = resolve_mode(cfg.mode, params)
        if mode == "extractive":  # quotes a span: reads more passages, whole, with no model call
            shown = found[:cfg.extractive_passages]
        else:
            shown = select_passages(found, question, params, cfg, request.backend.count_tokens)
        request.extra["qa"]["mode"] = mode
        answer = answer_from(question, shown, mode=mode, backend=request.backend, max_tokens=cfg.max_answer_tokens)
        if answer.abstained:
            request.extra["qa"]["abstained"] = True
            yield NO_ANSWER
            return
        text, cited = format_answer(answer, shown)
        request.sources.extend(p.ref() for p in cited)
        request.extra["qa"].update(abstained=False, answered_by=answer.mode, answer=answer.text,
                                   citations=[p.citation for p in cited])
        yield text
