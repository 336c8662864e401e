"""The session API for support integrations: sessions, turns through the full pipeline,
and users' memories.

::

    POST   /v1/sessions                     create            {user?, title?, session_id?}
    GET    /v1/sessions?user=U              list a user's sessions, newest first
    GET    /v1/sessions/{id}[?user=U]       one session with its messages
    PATCH  /v1/sessions/{id}[?user=U]       rename            {title}
    DELETE /v1/sessions/{id}[?user=U]       delete it, its messages and the memories that came from it
    POST   /v1/sessions/{id}/messages[?user=U]  one turn      {content, stream?, temperature?, ...}
    GET    /v1/users/{user}/memories        what the agent remembers about a user
    GET    /v1/users/{user}/documents       the documents a user's answers draw on, with their scope
    POST   /v1/users/{user}/documents       add a document of the user's own   {name, text}
    DELETE /v1/users/{user}/documents?name=N  remove one of the user's own documents
    DELETE /v1/users/{user}                 forget a user: memories, sessions, messages

Session ids are per user (:mod:`agent.server.session_ids`): ``?user=`` names whose session
an id means, needed only when the key acts for several users that each have one.

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
    USER_ID_PATTERN,
    DocumentUpload,
    MessageCreate,
    SessionCreate,
    SessionDetail,
    SessionOut,
    SessionRename,
)
from agent.server.session_ids import public_id, stored_id
from agent.server.streaming import SSE_DONE, SSE_HEADERS, Pump, Source, sse, start_pump

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=CheckedRoute, tags=["sessions"])

SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="a session id")]
OfUser = Annotated[str | None, Query(pattern=USER_ID_PATTERN, description="whose session (keys acting for several users)")]
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, description="a user id")]


def _session(info: Any) -> dict[str, Any]:
    return {"object": "session", **dataclasses.asdict(info), "id": public_id(info.id, info.user_id)}


def public_reply(reply: Any) -> dict[str, Any]:
    """A :class:`~agent.turn.Reply` as JSON, with the session id the client knows."""
    return {**reply.model_dump(mode="json"), "session_id": public_id(reply.session_id, reply.user_id)}


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def create_session(body: SessionCreate, request: Request, who: Caller) -> Any:
    """Start a session for a user (the key's default user when none is named)."""
    state = get_state(request)
    user = who.resolve_user(body.user)
    chosen = None
    if body.session_id is not None:
        # Only this user's own sessions can be in the way: ids are per user.
        if await state.call(state.find_session, user, body.session_id) is not None:
            raise ApiError(409, f"user {user!r} already has a session {body.session_id!r}: continue it, or choose "
                                "another id", param="session_id", code="session_exists")
        chosen = stored_id(user, body.session_id)
    info = await state.call(state.agent.store.create_session, user, body.title, chosen)
    return JSONResponse(_session(info), status_code=201)


@router.get("/sessions")
async def list_sessions(request: Request, who: Caller,
                        user: OfUser = None) -> dict[str, Any]:
    """A user's sessions, most recently used first."""
    state = get_state(request)
    infos = await state.call(state.agent.sessions, who.resolve_user(user))
    return {"object": "list", "data": [_session(i) for i in infos]}


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(request: Request, session_id: SessionId, who: Caller, user: OfUser = None) -> Any:
    """A session and its messages, oldest first."""
    state = get_state(request)
    info = await state.owned_session(who, session_id, user)
    messages = await state.call(state.agent.history, info.id)
    return {**_session(info), "messages": [dataclasses.asdict(m) for m in messages]}


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def rename_session(body: SessionRename, request: Request, session_id: SessionId,
                         who: Caller, user: OfUser = None) -> Any:
    state = get_state(request)
    info = await state.owned_session(who, session_id, user)
    await state.call(state.agent.rename_session, info.id, body.title)
    return _session(await state.call(state.agent.store.get_session, info.id))


@router.delete("/sessions/{session_id}")
async def delete_session(request: Request, session_id: SessionId,
                         who: Caller, user: OfUser = None) -> dict[str, Any]:
    state = get_state(request)
    info = await state.owned_session(who, session_id, user)
    await state.call(state.agent.delete_session, info.id)
    await state.call(state.index.forget_session, info.id)
    return {"id": session_id, "object": "session", "deleted": True}


@router.post("/sessions/{session_id}/messages")
async def post_message(body: MessageCreate, request: Request, session_id: SessionId,
                       who: Caller, user: OfUser = None) -> Any:
    """One user turn through the whole pipeline; the reply as JSON, or streamed."""
    state = get_state(request)
    options = merged_options(state.agent.config.generation, body.overrides())
    info = await state.owned_session(who, session_id, user)
    release = state.limiter.acquire(who)

    def start() -> Source:
        turn = state.agent.stream(body.content, user_id=info.user_id, session_id=info.id)
        return Source(turn, turn.cancel, lambda: turn.reply)

    pump = start_pump(start, executor=state.executor, options=options, release=release, flush_s=state.flush_s)
    if not body.stream:
        reply = await pump.result(request.is_disconnected)  # ClientGone: answered 499 (errors.py)
        return public_reply(reply)
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
                pending += sse({"type": "reply", "reply": public_reply(value)})
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
async def user_memories(request: Request, user_id: UserId, who: Caller,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """What the agent remembers about a user, newest first."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    refs = await state.call(lambda: state.agent.remember(user, limit=limit))
    return {"object": "list", "data": [r.model_dump(mode="json") for r in refs]}


def _document(info: Any) -> dict[str, Any]:
    return {"object": "document", **dataclasses.asdict(info), "scope": info.scope}


@router.get("/users/{user_id}/documents")
async def user_documents(request: Request, user_id: UserId, who: Caller) -> dict[str, Any]:
    """The documents a user's answers draw on: the shared knowledge base (``scope: shared``)
    and the user's own (``scope: user U``). Shared documents are added with ``llmos kb add``."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    docs = await state.call(state.agent.documents, user)
    return {"object": "list", "data": [_document(d) for d in docs]}


@router.post("/users/{user_id}/documents", status_code=201)
async def add_user_document(request: Request, user_id: UserId, body: DocumentUpload, who: Caller) -> dict[str, Any]:
    """Add a document of the user's own (only this user's answers draw on it)."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    added = await state.call(state.agent.add_document_text, body.name, body.text, user)
    return {"object": "document", "source": body.name, "user_id": user, "scope": f"user {user}",
            "passages": added, "unchanged": added == 0}


@router.delete("/users/{user_id}/documents")
async def remove_user_document(request: Request, user_id: UserId, who: Caller,
                               name: Annotated[str, Query(min_length=1, max_length=256)]) -> dict[str, Any]:
    """Remove one of the user's own documents (shared ones are removed with ``llmos kb remove``)."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    removed = await state.call(state.agent.remove_document, name, user)
    return {"object": "document", "source": name, "user_id": user, "deleted": True, "passages": removed}


@router.delete("/users/{user_id}")
async def forget_user(request: Request, user_id: UserId, who: Caller) -> dict[str, Any]:
    """Forget a user: their memories, sessions and messages."""
    state = get_state(request)
    user = who.resolve_user(check_user_id(user_id))
    await state.call(state.agent.forget_user, user)
    await state.call(state.index.forget_user, user)
    return {"id": user, "object": "user", "deleted": True}
