"""Masking personal data in transcripts: e-mail addresses, phone numbers, payment card numbers.

Pattern-based, so it is a safety net rather than a guarantee: it catches the common
shapes (``jane.doe@example.com``, ``+44 20 7946 0958``, ``(555) 123-4567``,
``4111 1111 1111 1111``) and leaves ordinary numbers (years, prices, order numbers of
fewer than 7 digits) alone. Card numbers must pass the Luhn check, so a 16-digit order
id is not mistaken for a card.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["mask_pii", "PII_TOKENS"]

PII_TOKENS = {"email": "[EMAIL]", "card": "[CARD]", "phone": "[PHONE]"}

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# An optional +country code, an optional (area code), then groups of digits joined by
# spaces, dots or dashes; the digit count is checked afterwards.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch)
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _is_phone(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(match):
        return False
    # A bare run of digits is more often an id or an amount than a phone number, unless
    # it is written internationally (+...) or is long enough to be a full number.
    grouped = bool(re.search(r"[ .()-]", match)) or match.startswith("+")
    return grouped or len(digits) >= 10


def mask_pii(text: str, counts: Counter[str] | None = None) -> str:
    """``text`` with e-mails, card numbers and phone numbers replaced by placeholders.

    ``counts`` (when given) is incremented per kind of masked item.
    """
    tally: Counter[str] = counts if counts is not None else Counter()

    def email(m: re.Match[str]) -> str:
        tally["email"] += 1
        return PII_TOKENS["email"]

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            tally["card"] += 1
            return PII_TOKENS["card"]
        return m.group(0)

    def phone(m: re.Match[str]) -> str:
        if _is_phone(m.group(0)):
            tally["phone"] += 1
            return PII_TOKENS["phone"]
        return m.group(0)

    # E-mails first (their local part may hold digits), cards before phones (a card
    # number would otherwise read as a long phone number).
    text = _EMAIL.sub(email, text)
    text = _CARD.sub(card, text)
    return _PHONE.sub(phone, text)
