"""The normalize stage: make user text safe to store and prompt with, or reject it."""

from __future__ import annotations

import re
import unicodedata

from agent.errors import InputError

__all__ = ["normalize_text"]

# C0 controls except \t and \n, DEL, C1 controls, and lone surrogates (which cannot be
# encoded as UTF-8 and would break the store).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def normalize_text(text: str, max_chars: int) -> str:
    """NFC-normalise, drop control characters (keeping newlines and tabs), trim.

    Raises :class:`InputError` for non-text, text longer than ``max_chars`` or text that is
    empty once cleaned; nothing is stored for a rejected message.
    """
    if not isinstance(text, str):
        raise InputError(f"a message must be text, not {type(text).__name__}")
    if len(text) > max_chars:
        raise InputError(
            f"the message is {len(text):,} characters; the limit is {max_chars:,}. Shorten it, or attach "
            "long text to the knowledge base instead (llmos kb add FILE)."
        )
    clean = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    clean = _CONTROL.sub("", clean).strip()
    if not clean:
        raise InputError("the message is empty: type some text")
    return clean
