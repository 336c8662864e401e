"""The built-in ``/code`` skill: ask the model for code, extract the fenced block, check
its syntax, and, when the config allows execution, test it in the sandbox; one retry shows
the model its error (syntax error or failing test)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SkillError
from skills.base import SkillRequest
from skills.code.extract import (
    best_block,
    check_python,
    extract_blocks,
    strip_tests,
    user_tests,
    wants_language,
)
from skills.config import CodeConfig, SandboxConfig, SkillsConfig
from skills.text import ask_model, closed_fence

__all__ = ["CodeSkill", "CodeOutcome", "CODE_SYSTEM", "names_code"]

# Deliberately plain: SmolLM2-135M writes working code for a bare request under its usual
# system prompt, and garbles it under a longer one full of instructions (measured).
CODE_SYSTEM = "You are a helpful AI assistant."
TESTS_SYSTEM = "You write unit tests as plain Python assert statements, one per line, nothing else."


# What a request for code names: the thing to write, a language, or code itself. Chosen on
# the routing set's tune part (every MBPP train task names one; CLINC150's out-of-scope
# questions "how do i find the area of a circle", "is autism a genetic disease" do not).
_CODE_WORDS = re.compile(
    r"\b(functions?|code|coding|program(s|ming)?|scripts?|class(es)?|methods?|regex(es)?|regular expression"
    r"|lambda|algorithms?|implement\w*|recursi\w+|snippet|compile\w*|debug\w*|refactor\w*|unit tests?"
    r"|sql|query|api|json|csv|html|css|dataframe|array|linked list|bash|shell command|one-liner)\b", re.I)
# The languages of ``wants_language`` except Go ("how do i get better at go"): "golang" or
# "go code" still count.
_LANGUAGES = re.compile(r"(?<![\w+#])(python|javascript|typescript|rust|java|c\+\+|c#|ruby|kotlin|golang)(?![\w+#])", re.I)
_CODE_SIGNS = re.compile(r"```|`[^`\n]+`|\bdef |\w\(\)|=>|[{};]\s*$", re.M)


def names_code(text: str) -> bool:
    """Does the turn ask for or show code? A word for code, a language, or code itself."""
    return bool(_CODE_WORDS.search(text) or _LANGUAGES.search(text) or _CODE_SIGNS.search(text))


@dataclass
class CodeOutcome:
    """What the skill found out about the code it returns (stored in ``Reply`` extra)."""

    language: str
    code: str = ""
    syntax_error: str | None = None
    executed: bool = False
    passed: bool | None = None
    tests: str = ""
    tests_by: str | None = None
    error: str | None = None
    not_run: str | None = None
    attempts: int = 0
    history: list[str] = field(default_factory=list)

    def status(self) -> str:
        if self.syntax_error:
            return f"The code does not parse: {self.syntax_error}"
        if self.executed:
            who = "your tests" if self.tests_by == "user" else "tests the model wrote"
            if self.passed:
                return f"Checked: it parses and passes {who} in the sandbox."
            return f"It parses but fails {who} in the sandbox:\n```\n{self.error}\n```"
        if self.not_run:
            return f"Syntax checked; not run: {self.not_run}"
        return "Syntax checked." if self.language == "python" else ""


def _reporting(until: Any, progress: Any, attempt: int, tries: int) -> Any:
    """``until``, telling ``progress`` each time the code being written gains a line."""
    if progress is None:
        return until
    lines = -1

    def check(text: str) -> bool:
        nonlocal lines
        if text.count("\n") != lines:
            lines = text.count("\n")
            retry = f" (retry {attempt} of {tries - 1})" if attempt else ""
            progress(attempt / tries, f"writing the code{retry}: {lines} line{'s' if lines != 1 else ''}")
        return bool(until(text))

    return check


def _rank(out: CodeOutcome) -> int:
    """Which of two failed attempts to keep: code that parses beats code that does not."""
    return 0 if not out.code else 1 if out.syntax_error else 2


class CodeSkill:
    """Code generation (``/code``)."""

    name = "code"
    description = ("Write code: returns a fenced block whose syntax is checked, and tests it in a "
                   "sandbox when code execution is enabled.")
    intents: tuple[str, ...] = ("code", "programming")
    command: str | None = "code"

    def __init__(self, config: SkillsConfig | None = None, *, sandbox: Any = None) -> None:
        cfg = config or SkillsConfig()
        self.config: CodeConfig = cfg.code
        self.sandbox_config: SandboxConfig = cfg.sandbox
        self._sandbox = sandbox

    def accepts(self, text: str, **_: Any) -> bool:
        """For a turn routed here by its intent (not ``/code``): does it name code (see
        :func:`names_code`)? A plain question the intent head took for a coding task ("how
        do i compute the median of a set of numbers") is answered by chat."""
        return names_code(text)

    @property
    def executes_code(self) -> bool:
        """True when this instance runs generated code (the HTTP server drops such skills
        unless its operator allowed code execution)."""
        return self.config.allow_execution

    def without_execution(self) -> CodeSkill:
        """A copy that only generates and syntax-checks (what a server may safely offer)."""
        return CodeSkill(SkillsConfig(code=self.config.model_copy(update={"allow_execution": False}),
                                      sandbox=self.sandbox_config))

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from skills.sandbox import Sandbox

            self._sandbox = Sandbox(self.sandbox_config)
        return self._sandbox

    def run(self, request: SkillRequest) -> Iterator[str]:
        ask, tests = user_tests(request.text)
        if not ask or ask.startswith("/"):
            raise SkillError("say what to write after /code, e.g. /code a Python function that reverses a string")
        outcome = self.solve(request.backend, ask, tests, should_stop=request.should_stop, progress=request.progress)
        if request.progress is not None:
            request.progress(1.0, "code checked")
        request.extra["code"] = {k: v for k, v in vars(outcome).items() if k not in ("code", "history")}
        fence = outcome.language if outcome.language not in ("", "c++", "c#") else {"c++": "cpp", "c#": "csharp"}.get(
            outcome.language, "")
        if not outcome.code:
            yield "I could not get code out of the model for that; try rephrasing the request."
            return
        yield f"```{fence}\n{outcome.code.rstrip()}\n```"
        status = outcome.status()
        if status:
            yield f"\n\n{status}"

    def solve(self, backend: Any, ask: str, tests: str = "", *, should_stop: Any = lambda: False,
              progress: Any = None) -> CodeOutcome:
        """Generate, check and (if allowed) test; retry with the error up to ``retries`` times.
        ``progress(fraction, message)`` hears how far the code is written: the reply only
        comes out once it is checked, which takes a while on a small CPU model."""
        lang = wants_language(ask)
        out = CodeOutcome(language=lang, tests=tests, tests_by="user" if tests else None)
        history: list[dict[str, str]] = []
        best: CodeOutcome | None = None
        prompt = ask if not tests else f"{ask}\n\nThe code must pass these tests:\n```python\n{tests}\n```"
        for attempt in range(1 + self.config.retries):
            if should_stop():
                break
            out.attempts = attempt + 1
            reply = ask_model(backend, CODE_SYSTEM, prompt, history=history,
                              max_new_tokens=self.config.max_code_tokens,
                              until=_reporting(closed_fence, progress, attempt, 1 + self.config.retries))
            out.history.append(reply)
            block = best_block(extract_blocks(reply), lang)
            if block is None:
                out.error = "the reply had no code block"
                history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
                prompt = "Reply with the code in one fenced code block."
                continue
            out.code, out.syntax_error, out.error = block.code, None, None
            if lang == "python":
                out.syntax_error = check_python(block.code)
            failure = out.syntax_error or self._test(backend, ask, out)
            if failure is None:
                return out
            if best is None or _rank(out) >= _rank(best):
                best = dataclasses.replace(out, history=list(out.history))
            history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
            prompt = f"That code fails:\n```\n{failure}\n```\nFix it and reply with the whole corrected code."
        if best is not None and _rank(best) > _rank(out):
            # a retry can be worse than the first try (small models): keep the better code
            best.attempts, best.history = out.attempts, out.history
            return best
        return out

    def _test(self, backend: Any, ask: str, out: CodeOutcome) -> str | None:
        """Run the tests in the sandbox when execution is allowed; the error text, or None."""
        if out.language != "python":
            return None
        if not self.config.allow_execution:
            out.not_run = "code execution is off (skills.code.allow_execution)"
            return None
        if not out.tests and self.config.write_tests:
            out.tests, out.tests_by = self._model_tests(backend, ask, out.code), "model"
        if not out.tests:
            out.not_run = "no tests to run"
            return None
        try:
            result = self.sandbox.run_python(strip_tests(out.code) + "\n\n" + out.tests + "\n")
        except SkillError as exc:  # the machine cannot isolate: say so, run nothing
            out.not_run = str(exc)
            return None
        out.executed, out.passed = True, result.ok
        out.error = None if result.ok else result.error_summary()
        return out.error

    def _model_tests(self, backend: Any, ask: str, code: str) -> str:
        reply = ask_model(backend, TESTS_SYSTEM, f"Task: {ask}\n\n```python\n{code}```\n\nWrite 3 assert statements "
                          "that check this code.", max_new_tokens=160)
        lines = [ln.strip() for block in (extract_blocks(reply) or []) for ln in block.code.splitlines()]
        lines += [ln.strip() for ln in reply.splitlines()]
        asserts = list(dict.fromkeys(ln for ln in lines if ln.startswith("assert ") and check_python(ln) is None))
        return "\n".join(asserts[:5])
