"""Neutralize terminal control characters before any text reaches a widget.

User text, model text, memory text, file names and error messages are *content*: they are
never parsed as Textual markup (widgets get ``Content``/``markup=False``) and any control
character in them is replaced by a visible stand-in, so a reply cannot clear the screen,
set the window title or write the clipboard through an escape sequence:

- C0 controls (except ``\\n`` and ``\\t``) become Unicode control pictures (ESC -> ``␛``);
- DEL becomes ``␡``;
- C1 controls (U+0080..U+009F, e.g. the 8-bit CSI ``\\x9b``) become the text ``\\x9b``;
- bidirectional overrides and isolates become ``\\u202e``-style text (no "trojan source");
- ``\\r\\n`` becomes ``\\n``; a lone ``\\r`` becomes ``␍``; U+2028/U+2029 become ``\\n``.
"""

from __future__ import annotations

import re

__all__ = ["neutralize", "StreamNeutralizer", "one_line"]

_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def _stand_in(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block: ␀ .. ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    if char in "\u2028\u2029":
        return "\n"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def neutralize(text: str) -> str:
    """Return ``text`` with every terminal control character made visible and harmless."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(_stand_in, text)


def one_line(text: str, limit: int = 200) -> str:
    """Neutralize and fold ``text`` onto one line (titles, labels, notifications)."""
    flat = " ".join(neutralize(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class StreamNeutralizer:
    """Neutralize a stream of pieces; a ``\\r`` at the end of a piece waits for the next one
    so that a ``\\r\\n`` split across two pieces still becomes one newline."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        if text.endswith("\r"):
            text, self._held = text[:-1], "\r"
        return neutralize(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return neutralize(held)
