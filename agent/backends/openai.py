"""The ``openai`` backend: any server speaking the OpenAI chat-completions API.

vLLM, TGI, llama.cpp's server, Ollama and ``llmos serve`` all do. This is how llmos
scales past one machine: point the dialogue manager at
``vllm serve MODEL --tensor-parallel-size N``. Streaming uses server-sent events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from agent.backends.base import Message
from agent.errors import BackendError
from agent.models.textstream import StopStringFilter, TextStream
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolCall, ToolChoice, ToolSpec, new_call_id

__all__ = ["OpenAIBackend"]


class OpenAIBackend:
    """Chat completions over HTTP. Token counts are estimated (about 4 characters per
    token) unless the server reports usage, which then fills the stream's counts.

    Tools, ``tool_choice`` and ``response_format`` are passed through in OpenAI's shape; the
    server's ``tool_calls`` (streamed deltas accumulated by index, or a whole message) come
    back as the stream's :class:`~agent.toolcalls.ToolCall` list. ``stream=False`` asks for
    one JSON response instead of server-sent events (a server that answers a streamed request
    with plain JSON is read either way)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0,
                 context_window: int = 8192, transport: httpx.BaseTransport | None = None,
                 stream: bool = True) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"base_url {base_url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.context_window = context_window
        self.streaming = stream
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers,
                                    transport=transport)

    @classmethod
    def from_env(cls, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", **kwargs: Any) -> OpenAIBackend:
        return cls(base_url, model, api_key=os.environ.get(api_key_env), **kwargs)

    def count_tokens(self, text: str) -> int:
        return max(1, (len(text) + 3) // 4) if text else 0

    def _payload(self, messages: Sequence[Message], options: GenerationOptions, tools: Sequence[ToolSpec] = (),
                 tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": [_wire_message(m) for m in messages],
            "stream": self.streaming,
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
        }
        if options.stop:
            payload["stop"] = list(options.stop)[:4]
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.repetition_penalty != 1.0:
            # not in OpenAI's API; vLLM and llmos accept it, others ignore unknown fields
            payload["repetition_penalty"] = options.repetition_penalty
        if options.top_k:
            payload["top_k"] = options.top_k
        if self.streaming:
            payload["stream_options"] = {"include_usage": True}
        if tools:
            payload["tools"] = [t.openai() for t in tools]
            payload["tool_choice"] = (tool_choice if tool_choice in ("auto", "none", "required")
                                      else {"type": "function", "function": {"name": tool_choice}})
        if response_format is not None and response_format.type != "text":
            if response_format.type == "json_schema":
                payload["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": response_format.name, "schema": response_format.schema_ or {"type": "object"}}}
            else:
                payload["response_format"] = {"type": "json_object"}
        return payload

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        out = TextStream(prompt_tokens=sum(self.count_tokens(str(m.get("content") or "")) for m in messages))
        payload = self._payload(messages, options, tools, tool_choice, response_format)
        return out.attach(self._events(payload, options, out))

    def _events(self, payload: dict[str, Any], options: GenerationOptions, out: TextStream) -> Iterator[str]:
        url = f"{self.base_url}/chat/completions"
        stop = StopStringFilter(options.stop)  # servers differ in honouring `stop`; enforce it here
        calls = _CallDeltas(url)
        try:
            with self._client.stream("POST", url, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise BackendError(_http_error(url, response))
                events: Iterator[str] = iter(())
                if "text/event-stream" in response.headers.get("content-type", "text/event-stream"):
                    events = _sse_data(response.iter_lines())
                else:  # one JSON completion (stream=False, or a server that does not stream)
                    response.read()
                    piece = stop.feed(self._whole(_json(response.text, url), url, out, calls))
                    if piece:
                        yield piece
                for data in events:
                    if data == "[DONE]":
                        break
                    chunk = _json(data, url)
                    if chunk.get("error"):
                        raise BackendError(f"{url} reported an error mid-stream: {chunk['error']}")
                    usage = chunk.get("usage")
                    if usage:
                        out.prompt_tokens = int(usage.get("prompt_tokens", out.prompt_tokens))
                        out.completion_tokens = int(usage.get("completion_tokens", out.completion_tokens))
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        piece = delta.get("content") or ""
                        if piece and not usage:
                            out.completion_tokens += 1
                        for part in delta.get("tool_calls") or []:
                            calls.add(part)
                        reason = choice.get("finish_reason")
                        if reason:
                            out.finish_reason = reason if reason in ("length", "tool_calls") else "stop"
                        text = stop.feed(piece)
                        if text:
                            yield text
                    if stop.stopped or out.cancelled:
                        break
        except httpx.ConnectError as exc:
            raise BackendError(
                f"cannot reach the OpenAI-compatible server at {self.base_url}: is it running? "
                f"Check model.base_url in the config. ({exc})"
            ) from None
        except httpx.TimeoutException:
            raise BackendError(
                f"the server at {self.base_url} did not answer in time: raise model.timeout_s or check its load"
            ) from None
        except httpx.HTTPError as exc:
            raise BackendError(f"HTTP error talking to {self.base_url}: {exc}") from None
        tail = stop.flush()
        if tail:
            yield tail
        out.tool_calls = calls.finish()
        if out.cancelled:
            out.finish_reason = "cancelled"
        elif out.tool_calls and out.finish_reason in (None, "stop"):
            out.finish_reason = "tool_calls"

    @staticmethod
    def _whole(body: dict[str, Any], url: str, out: TextStream, calls: _CallDeltas) -> str:
        """A non-streamed completion: its text; its calls go into ``calls``."""
        if body.get("error"):
            raise BackendError(f"{url} reported an error: {body['error']}")
        choices = body.get("choices") or []
        if not choices:
            raise BackendError(f"{url} answered without choices: {str(body)[:200]!r}")
        message = choices[0].get("message") or {}
        for index, call in enumerate(message.get("tool_calls") or []):
            calls.add({**call, "index": call.get("index", index)})
        reason = choices[0].get("finish_reason")
        if reason:
            out.finish_reason = reason if reason in ("length", "tool_calls") else "stop"
        usage = body.get("usage") or {}
        out.prompt_tokens = int(usage.get("prompt_tokens", out.prompt_tokens))
        text = message.get("content") or ""
        out.completion_tokens = int(usage.get("completion_tokens", out.completion_tokens or len(text) // 4))
        return str(text)

    def close(self) -> None:
        self._client.close()


def _wire_message(m: Mapping[str, Any]) -> dict[str, Any]:
    """A chat message as the API takes it: role and content, and the calls of an assistant
    turn (arguments as a JSON string) or the call id of a tool result."""
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content")}
    if m.get("tool_calls"):
        wire = []
        for call in m["tool_calls"]:
            if isinstance(call, ToolCall):
                wire.append(call.openai())
                continue
            fn = dict(call.get("function") or {})
            if not isinstance(fn.get("arguments"), str):
                fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
            wire.append({"id": call.get("id") or new_call_id(), "type": "function", "function": fn})
        out["tool_calls"] = wire
    for key in ("tool_call_id", "name"):
        if m.get(key) is not None:
            out[key] = m[key]
    return out


class _CallDeltas:
    """Tool calls assembled from streamed deltas: by ``index``, the id and name from the
    first delta that has them, the arguments' JSON text concatenated."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._parts: dict[int, dict[str, str]] = {}

    def add(self, delta: Mapping[str, Any]) -> None:
        index = int(delta.get("index", len(self._parts)))
        part = self._parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if delta.get("id"):
            part["id"] = str(delta["id"])
        fn = delta.get("function") or {}
        if fn.get("name"):
            part["name"] += str(fn["name"]) if not part["name"] or part["name"] != fn["name"] else ""
        args = fn.get("arguments")
        if isinstance(args, str):
            part["arguments"] += args
        elif isinstance(args, dict):  # a server that sends the object itself
            part["arguments"] = json.dumps(args)

    def finish(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._parts):
            part = self._parts[index]
            if not part["name"]:
                raise BackendError(f"{self.url} sent a tool call without a function name (index {index})")
            try:
                arguments = json.loads(part["arguments"]) if part["arguments"].strip() else {}
            except json.JSONDecodeError:
                raise BackendError(f"{self.url} sent tool call {part['name']!r} with arguments that are not JSON: "
                                   f"{part['arguments'][:200]!r}") from None
            if not isinstance(arguments, dict):
                raise BackendError(f"{self.url} sent tool call {part['name']!r} whose arguments are not an object")
            calls.append(ToolCall(id=part["id"] or new_call_id(), name=part["name"], arguments=arguments))
        return calls


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent-event stream (multi-line events joined)."""
    buf: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            buf.append(line[5:].lstrip(" "))
        elif line == "" and buf:
            yield "\n".join(buf)
            buf = []
    if buf:
        yield "\n".join(buf)


def _json(data: str, url: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        raise BackendError(f"{url} sent something that is not JSON in its event stream: {data[:200]!r}") from None
    if not isinstance(value, dict):
        raise BackendError(f"{url} sent an unexpected event: {data[:200]!r}")
    return value


def _http_error(url: str, response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("error", body)
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
    except ValueError:
        detail = response.text[:300]
    hints = {401: "the server rejected the API key: set the variable named by model.api_key_env",
             403: "the API key may not use this model or user",
             404: "wrong base_url (it usually ends in /v1) or unknown model name",
             429: "the server is rate-limiting: retry later or lower concurrency"}
    hint = hints.get(response.status_code, "see the server's log")
    return f"{url} answered HTTP {response.status_code}: {detail} ({hint})"
