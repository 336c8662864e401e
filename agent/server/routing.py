"""What every API route shares: the caller, the body check, the server state.

:class:`CheckedRoute` authenticates the caller (and checks its rate limit) before a byte of
the body is read: an unauthenticated client gets 401 at once, whatever it sends, and cannot
make the server read and parse up to ``max_body_bytes`` first. Then it reads the body and
refuses bytes that are not UTF-8 with a message that says where (FastAPI alone answers
"There was an error parsing the body"). The body is cached on the request, so it is read
once; the caller is cached too, for the route's ``Caller`` parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from agent.server.auth import Principal
from agent.server.errors import ApiError

if TYPE_CHECKING:
    from agent.server.state import ServerState

__all__ = ["CheckedRoute", "get_state", "principal", "Caller"]

_CALLER = "llmos.principal"  # where CheckedRoute leaves the caller in the request scope


class CheckedRoute(APIRoute):
    """An APIRoute that authenticates before reading the body, then refuses non-UTF-8
    request bodies with a clear 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            request.scope[_CALLER] = _authenticate(request)
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ApiError(400, f"the request body is not valid UTF-8 (bad byte at offset {exc.start}): "
                                        "send JSON encoded as UTF-8") from None
            return await handler(request)

        return checked


def get_state(request: Request) -> ServerState:
    return request.app.state.llmos  # type: ignore[no-any-return]


def _authenticate(request: Request) -> Principal:
    state = get_state(request)
    who = state.auth.authenticate(request)
    state.limiter.check_rate(who)
    return who


async def principal(request: Request) -> Principal:
    """The authenticated caller, after its rate limit (a FastAPI dependency; async so it
    runs on the event loop instead of costing a thread hop). Routes of :class:`CheckedRoute`
    did this before reading the body; the answer is reused, so one request costs one token."""
    cached = request.scope.get(_CALLER)
    return cached if isinstance(cached, Principal) else _authenticate(request)


Caller = Annotated[Principal, Depends(principal)]
"""A route parameter typed ``Caller`` receives the authenticated, rate-checked caller."""
