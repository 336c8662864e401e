"""Map-reduce summarisation: text longer than the model's context is cut into chunks on
line and sentence boundaries, each chunk is summarised, and the summaries are summarised
(again in chunks, until they fit one call)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent.options import GenerationOptions
from agent.prompts.fence import DATA_RULE, MARK, MARKED_RULE, fenced
from skills.text import model_parameters, sentence_spans

__all__ = ["chunk_by_tokens", "summarize_text", "chunk_budget", "SUMMARY_SYSTEM", "summary_messages",
           "first_sentences"]

Progress = Callable[[int, int], None]
"""Called with (steps done, steps planned) as the map-reduce proceeds."""

SUMMARY_SYSTEM = ("You write short, accurate summaries. Keep names, numbers and decisions. Do not add anything. "
                  f"{DATA_RULE} {MARKED_RULE}")

# Prompts that ask for a set number of sentences, and that number: small models write on
# past it (a paragraph of commentary for "one or two sentences"), so the stream is cut there.
_SENTENCE_LIMITS = {"dialogue": 2}
_SENTENCE_END = re.compile(r"(?<![A-Z][a-z])(?<!\b[A-Z])[.!?][\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9#])")

_KIND_PROMPTS = {
    "dialogue": "Summarize this dialogue in one or two sentences.",
    "conversation": "Summarize our conversation so far in a few sentences.",
    "text": "Summarize this text in a few sentences.",
    "partial": "Summarize this part of a longer text in a few sentences.",
    "combine": "These are summaries of consecutive parts of one text. Combine them into one short summary.",
}


def summary_messages(text: str, kind: str) -> list[dict[str, str]]:
    """The request, then the text inside the reference fence, marked (it may be a document
    or a conversation that carries instructions: they are summarised, not followed; see
    :mod:`agent.prompts.fence` for the measurement)."""
    return [{"role": "system", "content": SUMMARY_SYSTEM},
            {"role": "user", "content": f"{_KIND_PROMPTS[kind]}\n\n{fenced(text, mark=True)}\n\n"
                                        f"Summary (plain words, no {MARK}):"}]


def chunk_budget(backend: Any, max_summary_tokens: int, configured: int | None) -> int:
    """Tokens of source text per model call: what fits the context, and for small models
    less than that (they summarise long inputs poorly, and slowly on a CPU)."""
    if configured:
        return configured
    window = int(getattr(backend, "context_window", 2048) or 2048)
    fits = window - max_summary_tokens - 96  # the instructions and the chat template
    params = model_parameters(backend)
    cap = 1024 if params is not None and params < 1_000_000_000 else 6144
    return max(64, min(fits, cap))


def _pieces(text: str) -> Iterator[str]:
    """Lines, and sentences of long lines: the units chunks are made of."""
    for line in text.splitlines(keepends=True):
        if len(line) <= 400:
            yield line
            continue
        spans = sentence_spans(line)
        for k, (s, _e) in enumerate(spans):
            end = spans[k + 1][0] if k + 1 < len(spans) else len(line)
            yield line[s:end]


def chunk_by_tokens(text: str, budget: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Consecutive chunks of at most ``budget`` tokens (a single over-long sentence is cut by words)."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece in _pieces(text):
        cost = count_tokens(piece)
        if cost > budget:
            if current:
                chunks.append("".join(current))
                current, used = [], 0
            words = piece.split(" ")
            step = max(1, len(words) * budget // (cost + 1))
            chunks += [" ".join(words[k:k + step]) for k in range(0, len(words), step)]
            continue
        if used + cost > budget and current:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(piece)
        used += cost
    if current:
        chunks.append("".join(current))
    return [c.strip() for c in chunks if c.strip()]


def _options(max_tokens: int) -> GenerationOptions:
    return GenerationOptions(temperature=0.0, max_new_tokens=max_tokens, repetition_penalty=1.15)


def first_sentences(stream: Iterable[str], limit: int) -> Iterator[str]:
    """The pieces of ``stream`` up to the end of its ``limit``-th sentence; then the stream
    is cancelled (no tokens are spent on what would be cut). A sentence ends at ., ! or ?
    followed by a capital or a digit ("Mr. Smith" and "Dr. Li" do not end one)."""
    text = ""
    for piece in stream:
        before = len(text)
        text += piece
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if len(ends) >= limit:
            cut = ends[limit - 1]
            if cut > before:
                yield text[before:cut]
            cancel = getattr(stream, "cancel", None)
            if callable(cancel):
                cancel()
            return
        yield piece


def summarize_text(backend: Any, text: str, *, kind: str = "text", max_summary_tokens: int = 160,
                   chunk_tokens: int | None = None, progress: Progress | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """Stream the summary of ``text``; map-reduce when it does not fit one call."""
    budget = chunk_budget(backend, max_summary_tokens, chunk_tokens)
    count = backend.count_tokens
    chunks = chunk_by_tokens(text, budget, count)
    planned, done = len(chunks) + 1 if len(chunks) > 1 else 1, 0
    while len(chunks) > 1:
        summaries = []
        for chunk in chunks:
            if should_stop():
                return
            summaries.append(backend.stream(summary_messages(chunk, "partial"), _options(max_summary_tokens))
                             .text().strip())
            done += 1
            if progress:
                progress(done, planned)
        joined = "\n".join(f"- {s}" for s in summaries if s)
        before, chunks = len(chunks), chunk_by_tokens(joined, budget, count)
        if len(chunks) >= before:
            # Summaries as long as their chunks (a tiny budget): cut, rather than loop forever.
            words = joined.split(" ")
            chunks = [" ".join(words[: max(1, len(words) * budget // (count(joined) + 1))])]
        if len(chunks) > 1:
            planned += len(chunks)
        kind = "combine"
    final = backend.stream(summary_messages(chunks[0] if chunks else "", kind), _options(max_summary_tokens))
    limit = _SENTENCE_LIMITS.get(kind)
    yield from final if limit is None else first_sentences(final, limit)
    if progress:
        progress(planned, planned)
