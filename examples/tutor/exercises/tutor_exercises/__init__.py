"""The tutor example's code exercises, as two llmos skills.

``/exercise`` lists the exercises and ``/exercise evens`` (or ``/exercise 2``) shows one.
``/check`` followed by the learner's code runs it against that exercise's tests in the
sandbox (the exercise is the one named after ``/check``, else the last one shown in the
session) and says which tests pass, what a failing call returned, and a hint, never the
solution. The outcome is remembered as a fact about the learner, so a later session knows
what they solved and where they got stuck.

Exercises come from ``exercises.yml`` in this package, or from ``$TUTOR_EXERCISES``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError, SkillError
from skills import skill
from skills.base import SkillRequest
from skills.code.extract import check_python, extract_blocks

__all__ = ["Exercise", "load_exercises", "exercise", "check", "run_exercise", "CheckResult"]

_MARKER = re.compile(r"Exercise `([\w-]+)`")


class Exercise(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[\w-]+$")
    title: str
    task: str
    hint: str = ""
    follow_up: str = ""
    tests: list[str] = Field(min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exercises: list[Exercise] = Field(min_length=1)


def _source() -> tuple[str, str]:
    env = os.environ.get("TUTOR_EXERCISES")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"TUTOR_EXERCISES points at {path}, which is not a file")
        return str(path), path.read_text(encoding="utf-8")
    data = resources.files(__package__).joinpath("exercises.yml")
    return "tutor_exercises/exercises.yml", data.read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def _parse(name: str, text: str) -> tuple[Exercise, ...]:
    try:
        parsed = _File.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{name}: {where}: {first['msg']} (see the packaged exercises.yml for the shape)") from None
    for item in parsed.exercises:
        for test in item.tests:
            error = check_python(test)
            if error:
                raise ConfigError(f"{name}: exercise {item.id!r} has a test that does not parse: {error}")
    return tuple(parsed.exercises)


def load_exercises() -> tuple[Exercise, ...]:
    return _parse(*_source())


def find_exercise(key: str) -> Exercise | None:
    """An exercise by id, or by its 1-based number in the list."""
    items = load_exercises()
    if key.isdigit() and 1 <= int(key) <= len(items):
        return items[int(key) - 1]
    return next((e for e in items if e.id.lower() == key.lower()), None)


def _header(item: Exercise) -> str:
    return f"Exercise `{item.id}`: {item.title}"


@skill(command="exercise")
def exercise(text: str) -> Iterator[str]:
    """Code exercises: /exercise lists them, /exercise <id or number> shows one; then /check <your code>."""
    key = re.sub(r"^/exercise\b", "", text.strip()).strip()
    items = load_exercises()
    if not key:
        yield "Exercises (say /exercise <id> to start one):\n\n"
        for n, item in enumerate(items, 1):
            yield f"{n}. `{item.id}`: {item.title}\n"
        return
    item = find_exercise(key.split()[0])
    if item is None:
        yield f"There is no exercise {key.split()[0]!r}; say /exercise to list them."
        return
    yield f"{_header(item)}\n\n{item.task.strip()}\n\n"
    yield "Write it, then send it with /check followed by your code (a fenced block is fine)."


class CheckResult(BaseModel):
    """What running the learner's code against an exercise's tests found."""

    exercise: Exercise
    syntax_error: str | None = None
    load_error: str | None = None
    stopped: str | None = None
    """The sandbox limit that stopped the program (e.g. a loop that never ends)."""
    failures: list[tuple[str, str]] = Field(default_factory=list)
    """(test, what went wrong) for each failing test."""
    passed: int = 0

    @property
    def ok(self) -> bool:
        return (not self.syntax_error and not self.load_error and not self.stopped
                and not self.failures and self.passed == len(self.exercise.tests))


_HARNESS = '''
import ast, json, sys
TESTS = json.loads({tests!r})
out = {{"load_error": None, "results": []}}
try:
    import solution
    names = dict(vars(solution))
except BaseException as exc:
    out["load_error"] = f"{{type(exc).__name__}}: {{exc}}"
    names = None

def explain(test, scope):
    """For `assert f(x) == y`: what f(x) gave."""
    try:
        node = ast.parse(test).body[-1]
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1:
            for stmt in ast.parse(test).body[:-1]:
                exec(compile(ast.Module([stmt], []), "<test>", "exec"), scope)
            got = eval(compile(ast.Expression(node.test.left), "<test>", "eval"), scope)
            want = eval(compile(ast.Expression(node.test.comparators[0]), "<test>", "eval"), scope)
            return f"got {{got!r:.200}}, expected {{want!r:.200}}"
    except BaseException as exc:
        return f"{{type(exc).__name__}}: {{exc}}"
    return "the assertion is false"

if names is not None:
    for test in TESTS:
        try:
            exec(compile(test, "<test>", "exec"), dict(names))
            out["results"].append(None)
        except AssertionError:
            out["results"].append(explain(test, dict(names)))
        except BaseException as exc:
            out["results"].append(f"{{type(exc).__name__}}: {{exc}}")
sys.stdout.write("\\n{nonce}" + json.dumps(out) + "\\n")
'''


def learner_code(text: str) -> str:
    """The code in a /check message: its fenced block, else the text itself."""
    blocks = [b for b in extract_blocks(text) if b.code.strip()]
    return blocks[0].code if blocks else text


def run_exercise(item: Exercise, code: str, sandbox: Any) -> CheckResult:
    """Run ``code`` and then each of ``item``'s tests in ``sandbox``."""
    result = CheckResult(exercise=item, syntax_error=check_python(code))
    if result.syntax_error:
        return result
    nonce = f"@@llmos-{secrets.token_hex(8)}@@"
    run = sandbox.run_python(_HARNESS.format(tests=json.dumps(item.tests), nonce=nonce),
                             files={"solution.py": code})
    if run.limit:
        result.stopped = run.limit
        return result
    report = None
    for line in run.stdout.splitlines():
        if line.startswith(nonce):
            report = json.loads(line[len(nonce):])
    if report is None:
        result.load_error = run.error_summary(400)
        return result
    result.load_error = report["load_error"]
    for test, problem in zip(item.tests, report["results"], strict=False):
        if problem is None:
            result.passed += 1
        else:
            result.failures.append((test, problem))
    return result


def _which(request: SkillRequest, text: str) -> tuple[Exercise | None, str]:
    """The exercise to check (named first, else the last one shown) and the rest of the text."""
    first = text.split(maxsplit=1)
    if first and not first[0].startswith("```"):
        item = find_exercise(first[0])
        if item is not None:
            return item, first[1] if len(first) > 1 else ""
    for message in reversed(request.history):
        found = _MARKER.findall(message.get("content", ""))
        if found:
            return find_exercise(found[-1]), text
    return None, text


def _remember(request: SkillRequest, result: CheckResult) -> None:
    if request.memory is None:
        return
    item = result.exercise
    if result.ok:
        fact = f"Solved the exercise '{item.title}' ({item.id}): all {len(item.tests)} tests pass."
    else:
        problem = (result.syntax_error or result.load_error or
                   (f"stopped by the {result.stopped} limit" if result.stopped else None) or
                   f"{len(result.failures)} of {len(item.tests)} tests failed, e.g. {result.failures[0][1]}")
        fact = f"Struggled with the exercise '{item.title}' ({item.id}): {problem.splitlines()[0][:200]}"
    request.memory.add(fact, user_id=request.user_id, session_id=request.session_id, kind="fact",
                       source=f"exercise:{item.id}")


@skill(command="check")
def check(request: SkillRequest) -> Iterator[str]:
    """Check your solution to an exercise: /check followed by your code runs it against the tests in the sandbox."""
    from skills.sandbox import Sandbox

    text = re.sub(r"^/check\b", "", request.text.strip()).strip()
    item, rest = _which(request, text)
    if item is None:
        yield "Which exercise? Start one with /exercise <id>, or name it: /check evens <your code>."
        return
    code = learner_code(rest).strip()
    if not code:
        yield f"Send your code after /check, e.g. /check followed by a fenced block with your `{item.id}` solution."
        return
    if not request.config.skills.code.allow_execution:
        error = check_python(code)
        yield (f"{_header(item)}: " + (f"your code does not parse: {error}" if error else "your code parses.")
               + " Running it is off in this agent's config (skills.code.allow_execution).")
        return
    try:
        result = run_exercise(item, code, Sandbox(request.config.skills.sandbox))
    except SkillError as exc:  # the machine cannot isolate code: say why, run nothing
        yield f"{_header(item)}: I could not run your code here. {exc}"
        return
    request.extra["exercise"] = {"id": item.id, "passed": result.passed, "tests": len(item.tests), "ok": result.ok}
    _remember(request, result)
    yield from _report(result)


def _report(result: CheckResult) -> Iterator[str]:
    item = result.exercise
    head = _header(item)
    if result.syntax_error:
        yield f"{head}: your code does not parse yet.\n\n{result.syntax_error}\n\nFix that line and /check again."
        return
    if result.load_error:
        yield f"{head}: your code stopped with an error before any test ran:\n\n{result.load_error}"
        return
    if result.stopped:
        yield (f"{head}: the sandbox stopped your program ({result.stopped} limit). Is there a loop that never "
               "ends, or a very large range?")
        return
    if result.ok:
        yield f"{head}: all {len(item.tests)} tests pass. Well done!"
        if item.follow_up:
            yield f"\n\nTo check your understanding: {item.follow_up}"
        return
    yield f"{head}: {result.passed} of {len(item.tests)} tests pass.\n\n"
    for test, problem in result.failures:
        yield f"- `{test}`: {problem}\n"
    if item.hint:
        yield f"\nHint: {item.hint}"
