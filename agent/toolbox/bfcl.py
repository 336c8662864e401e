"""``llmos eval tools``: tool calling on four categories of BFCL (the Berkeley Function Calling
Leaderboard), scored offline by AST match (:mod:`agent.toolbox.bfcl_match`).

Each item offers its functions as :class:`~agent.toolcalls.ToolSpec` (BFCL's types mapped to
JSON Schema by :func:`to_json_schema`) and asks its question with ``tool_choice`` ``auto``, as
BFCL does: the model decides whether to call. Replies are greedy. Per category:

- ``ast_accuracy``: share of replies whose calls match an accepted answer (irrelevance: share
  of replies that make no call);
- ``valid_rate``: share of replies whose ``<tool_call>`` blocks all parse and satisfy the
  schema (a reply without calls is valid); with constraints on this is 1.0 by construction;
- ``call_rate``: share of replies that call at least one tool; ``seconds``: wall time.

``constrained=False`` runs the same prompts without the grammar mask, to measure what the
mask adds. ``offset``/``limit`` take a slice of each category (the first 20 items of each
were the prompt-wording tuning slice: report on ``offset=20``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.toolbox.bfcl_match import check_calls
from agent.toolcalls import ToolSpec

__all__ = ["CATEGORIES", "load_category", "to_json_schema", "tool_specs", "run_bfcl", "format_bfcl", "mask_cost"]

CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "parallel": "parallel", "irrelevance": "irrelevance"}
"""Category name -> the part of its file name (``BFCL_v4_<part>.json``)."""

_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "str": "string",
          "bool": "boolean"}


def to_json_schema(node: Any) -> Any:
    """A BFCL parameter schema as JSON Schema: ``dict`` -> object, ``float`` -> number,
    ``tuple`` -> array, ``any`` -> no type; objects that list properties take no others
    (BFCL fails a call with an unknown parameter)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue
            out["type"] = _TYPES.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
        if isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def tool_specs(functions: Sequence[dict[str, Any]]) -> list[ToolSpec]:
    """An item's functions as tools."""
    specs = []
    for fn in functions:
        params = to_json_schema(fn.get("parameters") or {"type": "object", "properties": {}})
        params["type"] = "object"
        specs.append(ToolSpec(name=fn["name"], description=fn.get("description", ""), parameters=params))
    return specs


def load_category(data_dir: str | Path, category: str) -> list[dict[str, Any]]:
    """A category's items, each with its ``answers`` (ground truth; empty for irrelevance)."""
    if category not in CATEGORIES:
        raise InputError(f"unknown BFCL category {category!r}; use {', '.join(CATEGORIES)}")
    root = Path(data_dir)
    file = root / f"BFCL_v4_{CATEGORIES[category]}.json"
    if not file.is_file():
        raise InputError(f"no {file.name} in {root}: pass the folder holding the BFCL files (../shared/data/bfcl)")
    answers: dict[str, list[dict[str, Any]]] = {}
    truth = root / "possible_answer" / file.name
    if category != "irrelevance":
        if not truth.is_file():
            raise InputError(f"no ground truth {truth}")
        for line in truth.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    items = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            item["answers"] = answers.get(item["id"], [])
            items.append(item)
    return items


def _messages(item: dict[str, Any]) -> list[dict[str, Any]]:
    turns = item["question"]
    return [dict(m) for m in (turns[0] if turns and isinstance(turns[0], list) else turns)]


def run_bfcl(data_dir: str | Path, *, model: str | Any = "smollm2-135m", categories: Sequence[str] = tuple(CATEGORIES),
             limit: int | None = None, offset: int = 0, constrained: bool = True, tool_choice: str = "auto",
             max_new_tokens: int = 256, style: str | None = None, details: bool = False,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run the categories on ``model`` (a name for :func:`~agent.models.loader.load_model`, or
    a loaded :class:`~agent.models.model.LanguageModel`) and score them."""
    from agent.models.loader import load_model
    from agent.options import GenerationOptions

    lm = load_model(model) if isinstance(model, str) else model
    if style is not None:
        lm.tool_style = style
    options = GenerationOptions(temperature=0.0, repetition_penalty=1.0, max_new_tokens=max_new_tokens)
    report: dict[str, Any] = {"model": lm.name, "constrained": constrained, "tool_choice": tool_choice,
                              "offset": offset, "limit": limit, "categories": {}}
    for category in categories:
        items = load_category(data_dir, category)[offset:]
        items = items[:limit] if limit is not None else items
        rows = []
        started = time.perf_counter()
        for i, item in enumerate(items):
            rows.append(_run_item(lm, item, category, options, constrained, tool_choice))
            if progress is not None:
                progress(category, i + 1, len(items))
        seconds = time.perf_counter() - started
        n = len(rows)
        summary: dict[str, Any] = {
            "n": n,
            "ast_accuracy": round(sum(r["correct"] for r in rows) / n, 4) if n else 0.0,
            "valid_rate": round(sum(r["valid"] for r in rows) / n, 4) if n else 0.0,
            "call_rate": round(sum(bool(r["calls"]) for r in rows) / n, 4) if n else 0.0,
            "seconds": round(seconds, 1),
        }
        if details:
            summary["items"] = rows
        report["categories"][category] = summary
    return report


def _run_item(lm: Any, item: dict[str, Any], category: str, options: Any, constrained: bool,
              tool_choice: str) -> dict[str, Any]:
    specs = tool_specs(item["function"])
    stream = lm.stream(_messages(item), options, tools=specs, tool_choice=tool_choice, constrained=constrained)
    text = stream.text()
    calls = [{c.name: c.arguments} for c in stream.tool_calls]
    # a block that did not parse or fit its schema stays in the text (agent.models.toolformat)
    valid = "<tool_call>" not in text
    result = check_calls(category, item["function"], calls, item["answers"])
    return {"id": item["id"], "correct": bool(result["valid"]), "valid": valid, "calls": calls,
            "text": text[:300], "finish": stream.finish_reason, "error": "; ".join(result["error"])[:300]}


def mask_cost(data_dir: str | Path, *, model: str | Any = "smollm2-135m", items: int = 10, offset: int = 20,
              tool_choice: str = "required", max_new_tokens: int = 96) -> dict[str, Any]:
    """What the constraint costs per generated token: ``items`` simple items decoded
    constrained and unconstrained to the same length, in alternating order (greedy; the
    prompt cached first, so the timed runs are decode steps), with the constraint's own time
    (checks, masks, advancing) per step."""
    from agent.models.loader import load_model
    from agent.options import GenerationOptions

    lm = load_model(model) if isinstance(model, str) else model
    made: list[Any] = []
    build = lm.constraint

    def capture(*args: Any, **kwargs: Any) -> Any:
        made.append(build(*args, **kwargs))
        return made[-1]

    lm.constraint = capture  # type: ignore[method-assign]
    options = GenerationOptions(temperature=0.0, repetition_penalty=1.0, max_new_tokens=max_new_tokens)
    warm = options.model_copy(update={"max_new_tokens": 1})
    totals = {"constrained": [0.0, 0], "unconstrained": [0.0, 0]}
    spent, steps, masked = 0.0, 0, 0
    try:
        for k, item in enumerate(load_category(data_dir, "simple")[offset:offset + items]):
            specs, messages = tool_specs(item["function"]), _messages(item)
            first = lm.stream(messages, options, tools=specs, tool_choice=tool_choice)
            first.text()  # (untimed) how long the constrained reply is
            length = options.model_copy(update={"max_new_tokens": max(1, first.completion_tokens)})
            for constrained in ((True, False) if k % 2 == 0 else (False, True)):  # both orders, alternately
                lm.stream(messages, warm, tools=specs, tool_choice=tool_choice, constrained=False).text()
                began = time.perf_counter()
                stream = lm.stream(messages, options if constrained else length, tools=specs,
                                   tool_choice=tool_choice, constrained=constrained)
                stream.text()
                row = totals["constrained" if constrained else "unconstrained"]
                row[0] += time.perf_counter() - began
                row[1] += stream.completion_tokens
                if constrained:
                    spent += made[-1].seconds
                    steps += made[-1].steps
                    masked += made[-1].masked_steps
    finally:
        del lm.constraint
    per = {k: round(1000 * v[0] / max(v[1], 1), 2) for k, v in totals.items()}
    mask_ms = 1000 * spent / max(steps, 1)
    return {"model": lm.name, "items": items, "tool_choice": tool_choice,
            "ms_per_token_unconstrained": per["unconstrained"], "ms_per_token_constrained": per["constrained"],
            "constraint_ms_per_token": round(mask_ms, 3),
            "constraint_share_of_step": round(mask_ms / max(per["unconstrained"], 1e-9), 4),
            "steps": steps, "masked_steps": masked}


def format_bfcl(report: dict[str, Any]) -> str:
    """A table of the categories for the terminal."""
    lines = [f"{report['model']}  ({'constrained' if report['constrained'] else 'unconstrained'}, "
             f"tool_choice {report['tool_choice']})",
             f"{'category':<12} {'n':>5} {'ast_accuracy':>13} {'valid_rate':>11} {'call_rate':>10} {'seconds':>8}"]
    for name, row in report["categories"].items():
        lines.append(f"{name:<12} {row['n']:>5} {row['ast_accuracy']:>13.3f} {row['valid_rate']:>11.3f} "
                     f"{row['call_rate']:>10.3f} {row['seconds']:>8.1f}")
    return "\n".join(lines)
