"""Session ids over HTTP are per user: the same id may exist for two users.

A client may choose a session id (a ticket number, ``ticket-99``). Were ids one global
namespace, ``POST /v1/sessions {"session_id": "ticket-99"}`` would answer "already exists"
for another user's ticket (an oracle), and whoever chose the id first would block everyone
else. So an id a client chooses is stored under ``<id>.<user tag>``, the tag being a digest
of the user id, and shown without it: two users each have their own ``ticket-99``, and no
response depends on whether another user's exists.

Ids the server chooses (random, without a dot) and sessions made outside the server
(``llmos ask --session``, the terminal UI) keep their plain id; a client reaches them only
for a user its key may act for. A dot never occurs in an id a client names
(:data:`~agent.server.schemas.SESSION_ID_PATTERN`), so the two kinds cannot collide.
"""

from __future__ import annotations

import hashlib

__all__ = ["stored_id", "public_id", "user_tag"]

_SEP = "."


def user_tag(user_id: str) -> str:
    """16 hex digits of the user id's SHA-256: a namespace, not a secret."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def stored_id(user_id: str, public: str) -> str:
    """The store's id for the session a client calls ``public`` for ``user_id``."""
    return f"{public}{_SEP}{user_tag(user_id)}"


def public_id(session_id: str, user_id: str) -> str:
    """The id a client sees for the stored session ``session_id`` of ``user_id``."""
    suffix = _SEP + user_tag(user_id)
    return session_id[: -len(suffix)] if session_id.endswith(suffix) else session_id
