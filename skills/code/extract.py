"""Code blocks out of a model's reply, syntax checks, and tests out of a user's message."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["CodeBlock", "extract_blocks", "best_block", "check_python", "user_tests", "wants_language",
           "strip_tests", "definitions_only"]

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_LANGS = ("python", "javascript", "typescript", "rust", "go", "java", "c++", "c#", "bash", "sql", "ruby", "kotlin")
_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript", "sh": "bash",
            "shell": "bash", "cpp": "c++", "golang": "go", "rs": "rust", "": ""}


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str


def extract_blocks(reply: str) -> list[CodeBlock]:
    """Fenced blocks (an unclosed last fence counts: the reply may have hit its token limit).
    A reply without fences that parses as Python is taken as one Python block."""
    blocks = []
    for lang, body in _FENCE.findall(reply):
        lang = _ALIASES.get(lang.lower(), lang.lower())
        if body.strip():
            blocks.append(CodeBlock(lang, body.rstrip() + "\n"))
    if not blocks and reply.strip() and check_python(reply.strip()) is None and re.search(r"\b(def|class|import|return)\b", reply):
        blocks.append(CodeBlock("python", reply.strip() + "\n"))
    return blocks


def best_block(blocks: list[CodeBlock], language: str) -> CodeBlock | None:
    """The longest block in ``language`` (unlabelled blocks count as it)."""
    fits = [b for b in blocks if b.language in (language, "")] or blocks
    return max(fits, key=lambda b: len(b.code)) if fits else None


def check_python(code: str) -> str | None:
    """None when ``code`` parses; else the syntax error, with its line, for the user or a retry."""
    try:
        ast.parse(code)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        return f"SyntaxError: {exc.msg} (line {exc.lineno}){': ' + line.strip() if line else ''}"
    except ValueError as exc:  # e.g. NUL bytes
        return f"ValueError: {exc}"
    return None


def user_tests(text: str) -> tuple[str, str]:
    """Split a request into (request, tests): ``assert`` lines, or a fenced block whose
    first line or label says test, are tests the code must pass."""
    tests: list[str] = []
    rest = text
    for match in list(_FENCE.finditer(text)):
        body = match.group(2)
        if "assert" in body or "test" in match.group(1).lower():
            tests.append(body.strip())
            rest = rest.replace(match.group(0), "")
    lines = []
    for line in rest.splitlines():
        if line.strip().startswith("assert "):
            tests.append(line.strip())
        else:
            lines.append(line)
    return "\n".join(lines).strip(), "\n".join(tests).strip()


def strip_tests(code: str) -> str:
    """Drop top-level ``assert`` lines and ``if __name__ == "__main__":`` blocks from model
    code, so our tests, not the model's demo, decide whether it works."""
    out, skipping = [], False
    for line in code.splitlines():
        if re.match(r"if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", line):
            skipping = True
            continue
        if skipping and (not line.strip() or line[:1].isspace()):
            continue
        skipping = False
        if line.startswith("assert "):
            continue
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def definitions_only(code: str) -> str:
    """Only the top-level imports, definitions and constant assignments of ``code``: what
    a test needs. A model's demo (``print(f(3))``, ``main()``, a ``while True`` loop, an
    ``input()``) could crash, hang or fail before the tests run, and would be judged
    instead of the code. Code that does not parse is cut to its longest prefix that does
    (a reply often breaks down in its demo, after the function), else gets
    :func:`strip_tests` only."""
    parsed = _parse_prefix(code)
    if parsed is None:
        return strip_tests(code)
    tree, code = parsed
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    drop: set[int] = set()
    for node in tree.body:
        if not (isinstance(node, _KEEP) or (isinstance(node, (ast.Assign, ast.AnnAssign)) and not _calls(node, defined))):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    kept = [line for n, line in enumerate(code.splitlines(), 1) if n not in drop]
    return "\n".join(kept).rstrip() + "\n"


def _parse_prefix(code: str) -> tuple[ast.Module, str] | None:
    """``code`` parsed, or its longest line prefix that parses and still defines something."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        text = "\n".join(lines[:end]) + "\n"
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        if end == len(lines) or any(isinstance(n, _KEEP[2:]) for n in tree.body):
            return tree, text
        return None
    return None


def _calls(node: ast.AST, names: set[str]) -> bool:
    """True when ``node`` calls one of the code's own functions (running the demo early)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
               for n in ast.walk(node))


def wants_language(text: str) -> str:
    """The language the user asked for (Python unless another one is named)."""
    low = text.lower()
    for lang in _LANGS:
        if re.search(rf"(?<![\w+#]){re.escape(lang)}(?![\w+#])", low):
            return lang
    return "python"
