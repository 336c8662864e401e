"""The OpenAI-compatible endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Two model ids are served. The agent's (``server.model_alias``, default the agent's name;
also any id the server does not know, so clients with a hard-coded model name work) runs
the whole dialogue pipeline: intent, sentiment, memory, skills, handoff, stored sessions
(see :mod:`agent.server.turns` for how requests map onto sessions). The backend model's own
id is a plain stateless model call, as vLLM would answer it; that is what a second llmos
agent uses when it points its ``openai`` backend at this server.

Replies carry the pipeline's findings in an ``llmos`` field that OpenAI clients ignore
(``completion.model_extra["llmos"]`` in the official Python client).

A request with ``tools`` (or a JSON ``response_format``) is a plain model call whatever its
model id, as vLLM answers it: the model's calls come back as ``tool_calls`` for the client to
run (every call constrained to its tool's schema), and ``tool`` messages carry the results
back. The agent's own tools (``tools:`` in its config) run inside the pipeline instead.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from agent.errors import InputError
from agent.models.textstream import TextStream
from agent.options import GenerationOptions
from agent.server.errors import ApiError, describe_exception, error_payload
from agent.server.overrides import merged_options
from agent.server.routing import Caller, CheckedRoute, get_state
from agent.server.schemas import ChatCompletion, ChatCompletionRequest, ChatMessage, NamedToolChoice
from agent.server.state import ServerState
from agent.server.streaming import SSE_DONE, SSE_HEADERS, Pump, Source, sse, start_pump
from agent.server.turns import (
    finish_turn,
    openai_finish,
    prepare_turn,
    reply_meta,
    split_conversation,
)
from agent.toolcalls import ResponseFormat, ToolCall, ToolSpec, check_tool_choice

__all__ = ["router"]

# One encoder for every content piece: json.dumps(..., ensure_ascii=False) builds a new
# encoder per call, and a streamed reply encodes one string per piece.
_json_string = json.JSONEncoder(ensure_ascii=False).encode

router = APIRouter(route_class=CheckedRoute, tags=["openai"])


@router.get("/v1/models")
async def list_models(request: Request, who: Caller) -> dict[str, Any]:
    """The served model ids: the agent (full pipeline) and its backend model (plain calls)."""
    state = get_state(request)
    ids = [(state.agent_model, "llmos")]
    if state.backend_model != state.agent_model:
        ids.append((state.backend_model, "llmos-backend"))
    return {"object": "list",
            "data": [{"id": i, "object": "model", "created": state.started, "owned_by": o} for i, o in ids]}


@router.post("/v1/chat/completions", responses={200: {"model": ChatCompletion,
                                                       "description": "a completion, or server-sent events"}})
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           who: Caller) -> Any:
    """OpenAI chat completions; ``stream: true`` answers with server-sent events."""
    state = get_state(request)
    if len(body.messages) > state.config.max_messages:
        raise ApiError(400, f"too many messages ({len(body.messages)}; the limit is {state.config.max_messages}): "
                            "send the recent ones, or continue a stored session with session_id", param="messages")
    user = who.resolve_user(body.user)
    options = merged_options(state.agent.config.generation, body.overrides())
    calling = _calling(body)
    plain = calling is not None or (body.model == state.backend_model and body.model != state.agent_model)
    reply_id, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    model = body.model if plain else state.agent_model
    head = _Head(reply_id, created, model)
    usage = bool(body.stream_options and body.stream_options.include_usage)
    # Everything that can refuse the request runs before a turn slot is taken: a slot taken
    # and not given back would answer 429 to this key for good.
    if plain:
        chat = _plain_messages(body.messages)
        release = state.limiter.acquire(who)
        try:
            return await _plain(state, chat, options, body.stream, usage, head, release, calling or _Calling())
        except BaseException:
            release()
            raise
    history, text = split_conversation(body.messages)
    release = state.limiter.acquire(who)

    def start() -> Source:
        prepared = prepare_turn(state, user, body.session_id, history, text)
        return Source(prepared.pieces(state), prepared.turn.cancel, lambda: finish_turn(state, prepared), prepared)

    pump = start_pump(start, executor=state.executor, options=options, release=release, flush_s=state.flush_s)
    if not body.stream:
        reply = await pump.result(request.is_disconnected)  # ClientGone: answered 499 (errors.py)
        payload = head.completion(reply.text, reply.finish_reason, reply.tokens.prompt, reply.tokens.completion)
        payload["llmos"] = meta = reply_meta(reply)
        return JSONResponse(payload, headers={"X-Llmos-Session": meta["session_id"]})
    session = (await pump.started()).info.session_id
    return StreamingResponse(_events(pump, head, usage, {"session_id": session, "user_id": user}),
                             media_type="text/event-stream", headers={**SSE_HEADERS, "X-Llmos-Session": session})


class _Head:
    """The fields every chunk of one reply repeats."""

    def __init__(self, reply_id: str, created: int, model: str) -> None:
        self.id, self.created, self.model = reply_id, created, model
        # Content chunks differ only in their text: build the JSON around it once.
        prefix, _, suffix = sse(self.chunk({"content": "\x00"})).partition('"\\u0000"')
        self._prefix, self._suffix = prefix, suffix

    def content_event(self, text: str) -> str:
        """The SSE event for one content piece (same bytes as ``sse(chunk(...))``)."""
        return self._prefix + _json_string(text) + self._suffix

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}

    def usage_chunk(self, prompt: int, completion: int) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": _usage(prompt, completion)}

    def completion(self, text: str, finish: str | None, prompt: int, completion: int,
                   calls: list[ToolCall] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message = {"role": "assistant", "content": text or None, "tool_calls": [c.openai() for c in calls]}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": openai_finish(finish), "logprobs": None}],
                "usage": _usage(prompt, completion)}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _events(pump: Pump, head: _Head, usage: bool, first: dict[str, Any] | None) -> AsyncIterator[str]:
    """The SSE body; closing it (the client went away) cancels the generation.

    Events that are ready together go out in one write: the opening chunk with the first
    pieces, the last pieces with the finish, usage and ``[DONE]``."""
    try:
        opening = head.chunk({"role": "assistant", "content": ""})
        if first is not None:
            opening["llmos"] = first
        pending = sse(opening)
        async for kind, value in pump:
            if kind == "pieces":
                pending += "".join(head.content_event(piece) for piece in value)
                if pump.ended:
                    continue  # the end is already here: one write for both
            elif kind == "done":
                prompt, completion, reason, extra = _result(value)
                calls = value.tool_calls if isinstance(value, TextStream) else []
                if calls:  # each call whole in one delta (clients accumulate deltas by index)
                    pending += sse(head.chunk({"tool_calls": [{"index": i, **c.openai()}
                                                              for i, c in enumerate(calls)]}))
                pending += sse(head.chunk({}, openai_finish(reason), **extra))
                if usage:
                    pending += sse(head.usage_chunk(prompt, completion))
                continue
            else:
                status, message, error_id = describe_exception(value)
                pending += sse(error_payload(status, message, error_id=error_id))
                continue
            yield pending
            pending = ""
        yield pending + SSE_DONE
    finally:
        pump.cancel()


def _result(value: Any) -> tuple[int, int, str | None, dict[str, Any]]:
    """Counts, finish reason and extra fields of a finished turn (Reply) or model stream."""
    if isinstance(value, TextStream):
        return value.prompt_tokens, value.completion_tokens, value.finish_reason, {}
    return value.tokens.prompt, value.tokens.completion, value.finish_reason, {"llmos": reply_meta(value)}


def _plain_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The request's messages for a plain model call: system, user and assistant turns, an
    assistant's ``tool_calls`` and the ``tool`` messages that answer them."""
    roles = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
    out: list[dict[str, Any]] = []
    for m in messages:
        entry: dict[str, Any] = {"role": roles[m.role], "content": m.text()}
        if m.role == "assistant" and m.tool_calls:
            entry["tool_calls"] = [{"id": c.id, "type": "function",
                                    "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                   for c in m.tool_calls]
        if m.role == "tool":
            if not m.tool_call_id:
                raise ApiError(400, "a tool message needs tool_call_id: the id of the call it answers",
                               param="messages")
            entry["tool_call_id"] = m.tool_call_id
            if m.name:
                entry["name"] = m.name
        out.append(entry)
    return out


@dataclass(frozen=True)
class _Calling:
    """What a request asks of tool calling (nothing, by default)."""

    tools: tuple[ToolSpec, ...] = ()
    choice: str = "auto"
    response_format: ResponseFormat | None = None
    parallel: bool = True


def _calling(body: ChatCompletionRequest) -> _Calling | None:
    """The request's tools, tool_choice and response_format, checked; None when it uses none."""
    fmt = body.response_format
    if not body.tools and (fmt is None or fmt.type == "text"):
        if body.tool_choice not in (None, "none", "auto"):
            raise ApiError(400, "tool_choice needs tools: offer at least one in `tools`", param="tool_choice")
        return None
    try:
        tools = tuple(ToolSpec(name=t.function.name, description=t.function.description,
                               parameters=t.function.parameters) for t in body.tools or ())
        choice_in: Any = body.tool_choice
        if isinstance(choice_in, NamedToolChoice):
            choice_in = choice_in.model_dump()
        choice = check_tool_choice(choice_in or ("auto" if tools else "none"), tools)
    except (ValueError, InputError) as exc:
        raise ApiError(400, f"invalid tools or tool_choice: {exc}", param="tools") from None
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ApiError(400, "two tools share a name: each function needs its own", param="tools")
    response_format = None
    if fmt is not None and fmt.type != "text":
        schema = fmt.json_schema.schema_ if fmt.type == "json_schema" and fmt.json_schema else None
        if fmt.type == "json_schema" and not schema:
            raise ApiError(400, "response_format json_schema needs json_schema.schema", param="response_format")
        response_format = ResponseFormat(type=fmt.type, schema=schema,
                                         name=fmt.json_schema.name if fmt.json_schema else "response")
    return _Calling(tools, choice, response_format, body.parallel_tool_calls is not False)


def _calls_of(generation: TextStream, calling: _Calling) -> list[ToolCall]:
    calls = list(generation.tool_calls)
    return calls if calling.parallel else calls[:1]


async def _plain(state: ServerState, chat: list[dict[str, Any]], options: GenerationOptions, stream: bool,
                 usage: bool, head: _Head, release: Callable[[], None], calling: _Calling) -> Any:
    """A stateless call to the backend model with the request's messages as they are."""
    backend = state.raw_backend

    def begin() -> TextStream:
        return backend.stream(chat, options, tools=calling.tools, tool_choice=calling.choice,
                              response_format=calling.response_format)

    if stream:
        def start() -> Source:
            generation = begin()

            def finished() -> TextStream:
                generation.tool_calls = _calls_of(generation, calling)
                return generation

            return Source(generation, generation.cancel, finished)

        pump = Pump(start, executor=state.executor, on_exit=release, flush_s=state.flush_s)
        await pump.started()
        return StreamingResponse(_events(pump, head, usage, None), media_type="text/event-stream",
                                 headers=SSE_HEADERS)

    def run() -> tuple[str, TextStream]:
        generation = begin()
        return generation.text(), generation

    try:
        text, generation = await state.call(run)
    finally:
        release()
    return JSONResponse(head.completion(text, generation.finish_reason, generation.prompt_tokens,
                                        generation.completion_tokens, _calls_of(generation, calling)))
