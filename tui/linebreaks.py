"""Keep the user's and the model's single newlines when Markdown is rendered.

Markdown joins the lines of a paragraph (a "soft break" is drawn as a space), so a poem, an
address or ``line one<Ctrl+J>line two`` would collapse into one line. Chat text means its
newlines: outside code fences, each newline that ends a non-blank line becomes a hard break
(two trailing spaces). Works on a stream: pieces pass through at once; only the decision
about a newline needs the line it ends.
"""

from __future__ import annotations

import re

__all__ = ["LineBreaks", "keep_line_breaks"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class LineBreaks:
    def __init__(self) -> None:
        self._line = ""
        self._fence: str | None = None

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for part in re.split(r"(\n)", piece):
            if part != "\n":
                self._line += part
                out.append(part)
                continue
            out.append(self._end_line())
        return "".join(out)

    def _end_line(self) -> str:
        line, self._line = self._line, ""
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)
            if self._fence is None:
                self._fence = marker
            elif marker[0] == self._fence[0] and len(marker) >= len(self._fence) and not line.strip(" `~"):
                self._fence = None
            return "\n"
        if self._fence is not None or not line.strip() or line.endswith("  "):
            return "\n"
        return "  \n"


def keep_line_breaks(text: str) -> str:
    """``text`` with its single newlines made hard breaks (see the module docstring)."""
    return LineBreaks().feed(text)
