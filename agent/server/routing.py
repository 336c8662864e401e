"""What every API route shares: the body check, the server state, the caller.

:class:`CheckedRoute` reads the body before FastAPI parses it and refuses bytes that are
not UTF-8 with a message that says where (FastAPI alone answers "There was an error
parsing the body"). The body is cached on the request, so it is read once.
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


class CheckedRoute(APIRoute):
    """An APIRoute that refuses non-UTF-8 request bodies with a clear 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
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


async def principal(request: Request) -> Principal:
    """The authenticated caller, after its rate limit (a FastAPI dependency; async so it
    runs on the event loop instead of costing a thread hop)."""
    state = get_state(request)
    who = state.auth.authenticate(request)
    state.limiter.check_rate(who)
    return who


Caller = Annotated[Principal, Depends(principal)]
"""A route parameter typed ``Caller`` receives the authenticated, rate-checked caller."""
