"""Per-key rate limits and concurrency caps (429), and the request size limit (413).

Rate: a token bucket per key, refilled at ``rate_per_minute / 60`` per second and holding
at most ``burst`` tokens. Concurrency: turns in flight per key; one more is refused at
once rather than queued, so a misbehaving client cannot tie up every worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.server.auth import Principal
from agent.server.errors import ApiError, error_response

__all__ = ["Limiter", "BodyLimitMiddleware", "BodyTooLarge"]


class _Bucket:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a request may go now, else the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Limiter:
    """Rate limit and concurrency cap, per principal (API key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._inflight: dict[str, int] = {}

    def check_rate(self, who: Principal) -> None:
        with self._lock:
            bucket = self._buckets.get(who.name)
            if bucket is None:
                bucket = self._buckets[who.name] = _Bucket(who.rate_per_minute / 60.0, who.burst)
            wait = bucket.take()
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, f"rate limit reached for key '{who.name}' ({who.rate_per_minute} requests per "
                                f"minute): retry in {seconds} s", code="rate_limited",
                           headers={"Retry-After": str(seconds)})

    def acquire(self, who: Principal) -> Callable[[], None]:
        """Take a turn slot; returns the function that gives it back (call it exactly once)."""
        with self._lock:
            busy = self._inflight.get(who.name, 0)
            if busy >= who.max_concurrent:
                raise ApiError(429, f"key '{who.name}' already has {busy} requests in flight (the limit is "
                                    f"{who.max_concurrent}): wait for one to finish", code="too_many_concurrent",
                               headers={"Retry-After": "1"})
            self._inflight[who.name] = busy + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._inflight[who.name] -= 1

        return release

    def in_flight(self, who: str) -> int:
        with self._lock:
            return self._inflight.get(who, 0)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while a body is read; an HTTPException so FastAPI passes it
    through its body parsing untouched to the JSON error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes (server.max_body_bytes): "
                              "send less, e.g. fewer or shorter messages")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Answer without reading the body; close the connection so the unread bytes
            # cannot be mistaken for the next request.
            response = error_response(413, BodyTooLarge(self.max_bytes).detail, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
