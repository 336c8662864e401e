"""Retrieval for question answering: the knowledge base plus the user's memories.

A passage counts as relevant when its cosine similarity to the question reaches
``skills.qa.min_similarity``. The fused search score is rank-based (the first hit always
scores high), so it cannot tell "nothing relevant" apart; the similarity can.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.turn import MemoryRef
from skills.config import QAConfig

__all__ = ["Passage", "retrieve", "select_passages", "crop", "cite_lines"]


@dataclass(frozen=True)
class Passage:
    """A retrieved passage and how to cite it."""

    id: int
    text: str
    kind: str
    source: str | None
    citation: str
    similarity: float
    score: float
    first_line: int | None = None
    """The file line on which ``text`` starts, when the citation counts lines."""

    def ref(self) -> MemoryRef:
        return MemoryRef(id=self.id, text=self.text, score=self.score, kind=self.kind, source=self.source)


_LINES = re.compile(r"^(?P<source>.*) \(lines? \d+(?:-\d+)?\)$")


def _first_line(hit: Any) -> int | None:
    locator = getattr(hit, "locator", None)
    match = re.fullmatch(r"lines? (\d+)(?:-\d+)?", locator) if isinstance(locator, str) else None
    return int(match.group(1)) if match else None


def cite_lines(passage: Passage, start: int, end: int) -> str:
    """The passage's citation narrowed to the lines of ``text[start:end]`` (e.g. the quoted
    answer): ``policy.md (line 14)`` instead of the whole passage's ``policy.md (lines 10-24)``.
    Unchanged when the citation does not count lines."""
    match = _LINES.match(passage.citation)
    if passage.first_line is None or match is None:
        return passage.citation
    first = passage.first_line + passage.text.count("\n", 0, start)
    last = passage.first_line + passage.text.count("\n", 0, max(start, end - 1))
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    return f"{match.group('source')} ({where})"


def _citation(hit: Any) -> str:
    cite = getattr(hit, "citation", None)
    if isinstance(cite, str) and cite:
        return cite
    if getattr(hit, "source", None):
        return str(hit.source)
    return "your memory" if hit.kind != "document" else f"document #{hit.id}"


def _similarities(hits: Sequence[Any], question: str, vector: Any, memory: Any) -> list[float]:
    sims = [getattr(h, "similarity", None) for h in hits]
    missing = [k for k, s in enumerate(sims) if s is None]
    embedder = getattr(memory, "embedder", None)
    if missing and embedder is not None:
        # Found by the lexical search only: measure it against the question too.
        q = np.asarray(vector if vector is not None else embedder.encode([question])[0], dtype=np.float32).reshape(-1)
        vecs = embedder.encode([hits[k].text for k in missing])
        if vecs.shape[1] == q.shape[0]:
            for k, v in zip(missing, vecs, strict=False):
                sims[k] = float(np.dot(v, q) / ((np.linalg.norm(v) * np.linalg.norm(q)) or 1.0))
    return [float(s) if s is not None else float(getattr(h, "score", 0.0)) for s, h in zip(sims, hits, strict=False)]


def _usable(hit: Any, question: str) -> bool:
    text = hit.text.strip()
    if hit.kind == "turn" and (text.startswith("/") or text.endswith("?") or text == question.strip()):
        return False  # the user's earlier questions are not evidence
    return bool(text)


def retrieve(memory: Any, question: str, *, user_id: str | None, vector: Any, config: QAConfig) -> list[Passage]:
    """Passages for ``question``, most similar first, already filtered by the threshold."""
    kinds = None if config.include_memories else ("document",)
    hits = [h for h in memory.search(question, k=config.k, user_id=user_id, kinds=kinds, vector=vector)
            if _usable(h, question)]
    sims = _similarities(hits, question, vector, memory)
    passages = [Passage(int(h.id), h.text, h.kind, getattr(h, "source", None), _citation(h), sim,
                        float(getattr(h, "score", sim)), _first_line(h)) for h, sim in zip(hits, sims, strict=False)]
    passages.sort(key=lambda p: -p.similarity)
    return [p for p in passages if p.similarity >= config.min_similarity]


def passage_budget(parameters: int | None, config: QAConfig) -> tuple[int, int]:
    """How many passages, and how many tokens each, a model of this size is shown."""
    if config.max_passages is not None:
        count = config.max_passages
    elif parameters is None:
        count = 4  # a server model: assume it is not tiny
    else:
        count = 1 if parameters < 500_000_000 else 2 if parameters < 3_000_000_000 else 4
    tokens = 320 if (parameters or 10**10) < 500_000_000 else 600
    return count, tokens


def crop(text: str, question: str, max_tokens: int, count_tokens: Any) -> str:
    """``text`` cut to about ``max_tokens``, keeping the sentences around the one that best
    matches the question (small models lose the thread in long contexts)."""
    if count_tokens(text) <= max_tokens:
        return text
    from skills.qa.extract import best_span
    from skills.text import sentence_spans

    spans = sentence_spans(text)
    best = best_span(question, [text])
    centre = next((k for k, (s, e) in enumerate(spans) if best and s <= best.start < e + 1), 0)
    lo = hi = centre
    used = count_tokens(text[spans[centre][0]:spans[centre][1]])
    while True:
        grew = False
        for nxt in (hi + 1, lo - 1):
            if 0 <= nxt < len(spans) and not lo <= nxt <= hi:
                cost = count_tokens(text[spans[nxt][0]:spans[nxt][1]])
                if used + cost <= max_tokens:
                    used += cost
                    lo, hi = min(lo, nxt), max(hi, nxt)
                    grew = True
        if not grew:
            break
    return text[spans[lo][0]:spans[hi][1]]


def select_passages(passages: Sequence[Passage], question: str, parameters: int | None, config: QAConfig,
                    count_tokens: Any) -> list[Passage]:
    """The passages the model sees, best first (so [1] is the strongest source), each cropped."""
    count, tokens = passage_budget(parameters, config)
    chosen = list(passages[:count])
    out = []
    for p in chosen:
        text = crop(p.text, question, tokens, count_tokens)
        shift = p.text.find(text)  # a crop is a stretch of the passage
        first = None if p.first_line is None or shift < 0 else p.first_line + p.text.count("\n", 0, shift)
        out.append(Passage(p.id, text, p.kind, p.source, p.citation, p.similarity, p.score, first))
    return out
