"""``llmos eval chat``: the whole turn against the bare model, on the same prompts.

Three modes answer the same IFEval prompts with the same sampling:

- ``raw``: the model alone, each prompt as the one user message of its chat template;
- ``agent``: the full :class:`~agent.dialogue.Agent` with the default config (understanding,
  routing, skills, recall, persona prompt), a fresh user per prompt;
- ``agent-shared-memory``: one user for every prompt, so memories pile up as they do for a
  real user and recall gets its chance to hurt.

Besides the IFEval scores (:mod:`agent.toolbox.ifeval`), the figures that show how a score
could be gamed or lost: which skills took the prompts, memories injected per turn, the
share of replies that echo the prompt, that leak the reference block's labels, and that hit
``max_new_tokens``. A stage that lowers the score against ``raw`` is a bug.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.toolbox.ifeval import IFEvalPrompt, is_echo, load_ifeval, score_ifeval

__all__ = ["MODES", "run_chat_eval", "format_chat_eval", "leaks_reference_labels", "run_facts_eval", "load_facts",
           "FACTS_FILE"]

FACTS_FILE = Path(__file__).with_name("data") / "facts.jsonl"
"""62 questions with exact answers (capitals, arithmetic, dates, basic science), written for
llmos from common knowledge: the sanity set the default sampling is chosen on."""

MODES = ("raw", "agent", "agent-shared-memory")

# What the reference block looks like to a model that echoes it (agent.prompts.reference_block)
_REFERENCE_MARKS = ("<reference", "</reference", "reference material", "recalled from earlier", "[1] (turn",
                    "[1] (document", "(turn)", "background from earlier", "it is not an instruction")


def leaks_reference_labels(reply: str) -> bool:
    """Whether a reply repeats the reference block's own labels (a small model that echoes
    its prompt instead of using it)."""
    low = reply.lower()
    return any(mark in low for mark in _REFERENCE_MARKS)


def run_chat_eval(ifeval: str | Path, *, mode: str = "agent", model: str | None = None, limit: int | None = None,
                  seed: int = 0, output: str | Path | None = None, generation: dict[str, Any] | None = None,
                  agent_factory: Callable[..., Any] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Answer the IFEval prompts in ``mode`` and score them. ``output`` also writes each
    prompt's reply, skill and memories as JSONL; ``generation`` overrides sampling options
    (for choosing defaults). ``agent_factory(data_dir, model, generation)`` builds the agent
    (default: ``Agent`` with the default config); tests pass fakes."""
    prompts = load_ifeval(ifeval, limit=limit, seed=seed)
    with _evaluated_agent("chat", mode, model, generation, agent_factory) as (agent, seeded):
        started = time.perf_counter()
        rows = _answer(agent, seeded, prompts, mode, progress)
        seconds = time.perf_counter() - started
        stored = _memories_stored(agent, prompts, mode)
    result = _report(prompts, rows, mode=mode, model=agent.model_name, seconds=seconds, output=output)
    result["memories_stored"] = stored
    return result


def _memories_stored(agent: Any, prompts: Sequence[IFEvalPrompt], mode: str) -> int | None:
    """How many memories the run left in the store (the write policy at work); None: no store."""
    memory = getattr(agent, "memory", None)
    count = getattr(memory, "count", None)
    if mode == "raw" or not callable(count):
        return None
    users = ["ifeval"] if mode == "agent-shared-memory" else [f"ifeval-{p.key}" for p in prompts]
    return int(sum(count(user) for user in users))


@contextmanager
def _evaluated_agent(name: str, mode: str, model: str | None, generation: dict[str, Any] | None,
                     factory: Callable[..., Any] | None) -> Iterator[tuple[Any, _Seeded]]:
    """An agent in a temporary data dir, its backend seeded per turn (:class:`_Seeded`),
    closed afterwards."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    with tempfile.TemporaryDirectory(prefix=f"llmos-eval-{name}-") as tmp:
        agent = (factory or _default_agent)(Path(tmp), model, generation)
        try:
            seeded = agent.backend = _Seeded(agent.backend)
            yield agent, seeded
        finally:
            agent.close()


def _ask(agent: Any, seeded: _Seeded, mode: str, text: str, user: str) -> dict[str, Any]:
    """One turn in ``mode``: the bare model (``raw``) or the whole agent as ``user``."""
    if mode == "raw":  # the model alone, with the agent's own sampling
        stream = seeded.stream([{"role": "user", "content": text}], agent.config.generation)
        return {"text": stream.text().strip(), "skill": None, "memories": 0, "intent": None,
                "finish_reason": stream.finish_reason}
    reply = agent.chat(text, user_id=user)
    return {"text": reply.text, "skill": reply.skill, "memories": len(reply.memories),
            "intent": reply.intent.label if reply.intent else None, "finish_reason": reply.finish_reason}


def _default_agent(data_dir: Path, model: str | None, generation: dict[str, Any] | None = None) -> Any:
    from agent.config import load_config
    from agent.dialogue import Agent

    overrides: dict[str, Any] = {"data_dir": str(data_dir)}
    if model:
        overrides["model"] = {"name": model}
    if generation:
        overrides["generation"] = dict(generation)
    # environ={}: the figures are for the default config, whatever the shell exports
    return Agent(load_config(environ={}, overrides=overrides))


class _Seeded:
    """The agent's backend with every generation seeded by the prompt at hand, so that the
    modes sample alike when the sampling is not greedy."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seed = inner, 0
        self.name, self.context_window = getattr(inner, "name", "model"), inner.context_window

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def stream(self, messages: Any, options: Any, **calling: Any) -> Any:
        from agent.options import with_overrides

        return self.inner.stream(messages, with_overrides(options, {"seed": self.seed}), **calling)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def _answer(agent: Any, seeded: _Seeded, prompts: Sequence[IFEvalPrompt], mode: str,
            progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(prompts):
        seeded.seed = p.key
        user = "ifeval" if mode == "agent-shared-memory" else f"ifeval-{p.key}"
        rows.append({"key": p.key, **_ask(agent, seeded, mode, p.prompt, user)})
        if progress is not None:
            progress(i + 1, len(prompts))
    return rows


def _report(prompts: Sequence[IFEvalPrompt], rows: list[dict[str, Any]], *, mode: str, model: str, seconds: float,
            output: str | Path | None) -> dict[str, Any]:
    texts = [r["text"] for r in rows]
    scores = score_ifeval(prompts, texts)
    n = max(1, len(rows))
    skills = Counter(r["skill"] or "chat" for r in rows)
    if output:
        with Path(output).open("w", encoding="utf-8") as f:
            for p, r, ok in zip(prompts, rows, scores["passed"], strict=True):
                f.write(json.dumps({**r, "prompt": p.prompt, "prompt_strict": ok,
                                    "echo": is_echo(p, r["text"])}, ensure_ascii=False) + "\n")
    return {
        "n": len(rows), "mode": mode, "model": model,
        "prompt_strict": scores["prompt_strict"], "prompt_loose": scores["prompt_loose"],
        "inst_strict": scores["inst_strict"], "inst_loose": scores["inst_loose"],
        "skills": dict(skills.most_common()),
        "chat_share": round(skills.get("chat", 0) / n, 4),
        "memories_per_turn": round(sum(r["memories"] for r in rows) / n, 3),
        "echo_rate": round(sum(is_echo(p, t) for p, t in zip(prompts, texts, strict=True)) / n, 4),
        "label_leak_rate": round(sum(leaks_reference_labels(t) for t in texts) / n, 4),
        "cap_rate": round(sum(r["finish_reason"] == "length" for r in rows) / n, 4),
        "seconds": round(seconds, 1),
    }


def load_facts(path: str | Path | None = None) -> list[tuple[str, list[str]]]:
    """``(question, accepted answers)`` pairs from a JSONL file of ``{q, a: [...]}`` rows."""
    file = Path(path) if path else FACTS_FILE
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(str(r["q"]), [str(a) for a in r["a"]]) for r in rows]


def _answered(reply: str, answers: Sequence[str]) -> bool:
    import re

    return any(re.search(rf"(?<![\w.]){re.escape(a)}(?![\w])", reply, re.IGNORECASE) for a in answers)


def run_facts_eval(*, mode: str = "agent", model: str | None = None, data: str | Path | None = None,
                   generation: dict[str, Any] | None = None, repeats: int = 1,
                   agent_factory: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Ask each factual question (``repeats`` times, each in a fresh session and data dir
    state for the agent modes) and count replies that contain an accepted answer."""
    facts = load_facts(data)
    correct, wrong = 0, []
    with _evaluated_agent("facts", mode, model, generation, agent_factory) as (agent, seeded):
        started = time.perf_counter()
        for r in range(repeats):
            for i, (question, answers) in enumerate(facts):
                seeded.seed = 1000 * r + i
                user = "facts" if mode == "agent-shared-memory" else f"facts-{r}-{i}"
                text = _ask(agent, seeded, mode, question, user)["text"]
                if _answered(text, answers):
                    correct += 1
                else:
                    wrong.append({"q": question, "reply": text[:160]})
        seconds = time.perf_counter() - started
    total = len(facts) * repeats
    return {"n": total, "mode": mode, "model": agent.model_name, "accuracy": round(correct / max(1, total), 4),
            "generation": agent.config.generation.model_dump(exclude={"stop"}), "seconds": round(seconds, 1),
            "wrong": wrong}


def format_chat_eval(result: dict[str, Any]) -> str:
    lines = [f"eval chat: {result['model']}, mode {result['mode']}, {result['n']} IFEval prompts"]
    for key in ("prompt_strict", "prompt_loose", "inst_strict", "inst_loose", "chat_share", "memories_per_turn",
                "echo_rate", "label_leak_rate", "cap_rate", "seconds"):
        lines.append(f"  {key:<18} {result[key]}")
    lines.append("  skills             " + ", ".join(f"{k} {v}" for k, v in result["skills"].items()))
    return "\n".join(lines)
