"""Who is calling, and which users they may act for.

API keys live in the config as SHA-256 hashes, each bound to the users (memory namespaces)
it may act for. A request presents ``Authorization: Bearer KEY``; the server hashes it and
looks the hash up. With no key configured, only loopback clients are served (and they may
act for any user), so a fresh ``llmos serve`` is never open to the network by accident.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from agent.config import ANY_USER, ServerConfig
from agent.server.errors import ApiError
from agent.server.schemas import USER_ID_PATTERN

__all__ = ["Principal", "Authenticator", "hash_key", "new_key", "check_user_id", "LOCAL_USER"]

LOCAL_USER = "local"
"""The user a loopback client acts for when it names none (as ``llmos ask`` does)."""

_USER_ID = re.compile(USER_ID_PATTERN)


def hash_key(key: str) -> str:
    """The hex SHA-256 of an API key, as stored in ``server.api_keys[].sha256``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits)."""
    return "llmos-" + secrets.token_urlsafe(32)


def check_user_id(user: str) -> str:
    """A user id is a namespace key: 1-128 characters, letters, digits and ``._@:+=/-``."""
    if not _USER_ID.match(user):
        raise ApiError(400, f"invalid user id {user[:40]!r}: use 1-128 letters, digits or ._@:+=/- "
                            "(starting with a letter or digit)", param="user")
    return user


@dataclass(frozen=True)
class Principal:
    """The caller: a key (or the loopback client) with its users and limits."""

    name: str
    users: frozenset[str] | None
    """Users it may act for; None means any."""
    default_user: str
    rate_per_minute: int
    burst: int
    max_concurrent: int

    def may_act_for(self, user: str) -> bool:
        return self.users is None or user in self.users

    def resolve_user(self, requested: str | None) -> str:
        """The user a request acts for: the one it names (if allowed) or the key's default."""
        user = check_user_id(requested) if requested else self.default_user
        if not self.may_act_for(user):
            raise ApiError(403, f"the API key '{self.name}' may not act for user {user!r}: add the user to the "
                                "key's users in server.api_keys, or use a key bound to that user", param="user")
        return user


class Authenticator:
    """Turns a request into a :class:`Principal`, or refuses it (401/403)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._keys = {}
        for key in config.api_keys:
            users = None if ANY_USER in key.users else frozenset(key.users)
            default = next((u for u in key.users if u != ANY_USER), LOCAL_USER)
            self._keys[key.sha256] = Principal(
                name=key.name, users=users, default_user=default,
                rate_per_minute=key.rate_limit_per_minute or config.rate_limit_per_minute,
                burst=config.rate_limit_burst, max_concurrent=key.max_concurrent or config.max_concurrent)
        self._loopback = Principal(name="loopback", users=None, default_user=LOCAL_USER,
                                   rate_per_minute=config.rate_limit_per_minute, burst=config.rate_limit_burst,
                                   max_concurrent=config.max_concurrent)

    @property
    def open_to_loopback_only(self) -> bool:
        return not self._keys

    def authenticate(self, request: Request) -> Principal:
        if not self._keys:
            host = request.client.host if request.client else ""
            if not _is_loopback(host):
                raise ApiError(403, "this server has no API keys configured, so it only answers clients on this "
                                    "machine: add server.api_keys to the config (llmos serve-key makes one)")
            return self._loopback
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer YOUR_KEY'",
                           headers={"WWW-Authenticate": "Bearer"})
        # A dict lookup by digest leaks nothing useful through timing: the caller cannot
        # steer the digest of a guess towards a stored one.
        principal = self._keys.get(hash_key(token.strip()))
        if principal is None:
            raise ApiError(401, "invalid API key: check the key, or ask the operator for one",
                           headers={"WWW-Authenticate": "Bearer"})
        return principal


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
