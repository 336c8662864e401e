"""The session API for support integrations: sessions, turns through the full pipeline,
and users' memories.

::

    POST   /v1/sessions                     create            {user?, title?, session_id?}
    GET    /v1/sessions?user=U              list a user's sessions, newest first
    GET    /v1/sessions/{id}                one session with its messages
    PATCH  /v1/sessions/{id}                rename            {title}
    DELETE /v1/sessions/{id}                delete it and its messages
    POST   /v1/sessions/{id}/messages       one turn          {content, stream?, temperature?, ...}
    GET    /v1/users/{user}/memories        what the agent remembers about a user
    DELETE /v1/users/{user}                 forget a user: memories, sessions, messages

A streamed turn is server-sent events: ``{"type": "session", ...}``, then ``{"type":
"delta", "text": ...}`` per piece, then ``{"type": "reply", "reply": {...}}`` (the whole
:class:`~agent.turn.Reply`) or ``{"type": "error", "error": {...}}``, then ``[DONE]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from agent.server.auth import check_user_id
from agent.server.errors import ApiError, describe_exception, error_payload
from agent.server.overrides import merged_options
from agent.server.routing import Caller, CheckedRoute, get_state
from agent.server.schemas import (
    SESSION_ID_PATTERN,
    MessageCreate,
    SessionCreate,
    SessionDetail,
    SessionOut,
    SessionRename,
)
from agent.server.streaming import SSE_DONE, SSE_HEADERS, Pump, Source, sse, start_pump

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=CheckedRoute, tags=["sessions"])

SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="a session id")]


def _session(info: Any) -> dict[str, Any]:
    return {"object": "session", **dataclasses.asdict(info)}


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def create_session(body: SessionCreate, request: Request, who: Caller) -> Any:
    """Start a session for a user (the key's default user when none is named)."""
    state = get_state(request)
    user = who.resolve_user(body.user)
    if body.session_id is not None and await state.call(state.session_info, body.session_id) is not None:
        raise ApiError(409, f"session {body.session_id!r} already exists: choose another id", param="session_id")
    info = await state.call(state.agent.store.create_session, user, body.title, body.session_id)
    return JSONResponse(_session(info), status_code=201)


@router.get("/sessions")
async def list_sessions(request: Request, who: Caller,
                        user: Annotated[str | None, Query(max_length=128)] = None) -> dict[str, Any]:
    """A user's sessions, most recently used first."""
    state = get_state(request)
    infos = await state.call(state.agent.sessions, who.resolve_user(user))
    return {"object": "list", "data": [_session(i) for i in infos]}


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(request: Request, session_id: SessionId, who: Caller) -> Any:
    """A session and its messages, oldest first."""
    state = get_state(request)
    info = await state.owned_session(who, session_id)
    messages = await state.call(state.agent.history, session_id)
    return {**_session(info), "messages": [dataclasses.asdict(m) for m in messages]}


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def rename_session(body: SessionRename, request: Request, session_id: SessionId,
                         who: Caller) -> Any:
    state = get_state(request)
    await state.owned_session(who, session_id)
    await state.call(state.agent.rename_session, session_id, body.title)
    return _session(await state.call(state.agent.store.get_session, session_id))


@router.delete("/sessions/{session_id}")
async def delete_session(request: Request, session_id: SessionId,
                         who: Caller) -> dict[str, Any]:
    state = get_state(request)
    await state.owned_session(who, session_id)
    await state.call(state.agent.delete_session, session_id)
    await state.call(state.index.forget_session, session_id)
    return {"id": session_id, "object": "session", "deleted": True}


@router.post("/sessions/{session_id}/messages")
async def post_message(body: MessageCreate, request: Request, session_id: SessionId,
                       who: Caller) -> Any:
    """One user turn through the whole pipeline; the reply as JSON, or streamed."""
    state = get_state(request)
    info = await state.owned_session(who, session_id)
    options = merged_options(state.agent.config.generation, body.overrides())
    release = state.limiter.acquire(who)

    def start() -> Source:
        turn = state.agent.stream(body.content, user_id=info.user_id, session_id=session_id)
        return Source(turn, turn.cancel, lambda: turn.reply)

    pump = start_pump(start, executor=state.executor, options=options, release=release, flush_s=state.flush_s)
    if not body.stream:
        reply = await pump.result(request.is_disconnected)  # ClientGone: answered 499 (errors.py)
        return reply.model_dump(mode="json")
    await pump.started()
    return StreamingResponse(_events(pump, session_id, info.user_id), media_type="text/event-stream",
                             headers=SSE_HEADERS)


async def _events(pump: Pump, session_id: str, user_id: str) -> AsyncIterator[str]:
    try:
        pending = sse({"type": "session", "session_id": session_id, "user_id": user_id})
        async for kind, value in pump:  # events ready together go out in one write
            if kind == "pieces":
                pending += "".join(sse({"type": "delta", "text": piece}) for piece in value)
                if pump.ended:
                    continue
            elif kind == "done":
                pending += sse({"type": "reply", "reply": value.model_dump(mode="json")})
                continue
            else:
                status, message, error_id = describe_exception(value)
                pending += sse({"type": "error", **error_payload(status, message, error_id=error_id)})
                continue
            yield pending
            pending = ""
        yield pending + SSE_DONE
    finally:
        pump.cancel()


@router.get("/users/{user_id}/memories")
async def user_memories(request: Request, user_id: str, who: Caller,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """What the agent remembers about a user, newest first."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    refs = await state.call(lambda: state.agent.remember(user, limit=limit))
    return {"object": "list", "data": [r.model_dump(mode="json") for r in refs]}


@router.delete("/users/{user_id}")
async def forget_user(request: Request, user_id: str, who: Caller) -> dict[str, Any]:
    """Forget a user: their memories, sessions and messages."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    await state.call(state.agent.forget_user, user)
    await state.call(state.index.forget_user, user)
    return {"id": user, "object": "user", "deleted": True}
