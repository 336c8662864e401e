"""The ``openai`` backend: any server speaking the OpenAI chat-completions API.

vLLM, TGI, llama.cpp's server, Ollama and ``llmos serve`` all do. This is how llmos
scales past one machine: point the dialogue manager at
``vllm serve MODEL --tensor-parallel-size N``. Streaming uses server-sent events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from agent.backends.base import Message
from agent.errors import BackendError
from agent.models.textstream import StopStringFilter, TextStream
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec

__all__ = ["OpenAIBackend"]


class OpenAIBackend:
    """Chat completions over HTTP. Token counts are estimated (about 4 characters per
    token) unless the server reports usage, which then fills the stream's counts."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0,
                 context_window: int = 8192, transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"base_url {base_url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.context_window = context_window
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers,
                                    transport=transport)

    @classmethod
    def from_env(cls, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", **kwargs: Any) -> OpenAIBackend:
        return cls(base_url, model, api_key=os.environ.get(api_key_env), **kwargs)

    def count_tokens(self, text: str) -> int:
        return max(1, (len(text) + 3) // 4) if text else 0

    def _payload(self, messages: Sequence[Message], options: GenerationOptions) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
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
        return payload

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        if tools or (response_format is not None and response_format.type != "text"):
            raise BackendError("tool calling and JSON replies are not passed to OpenAI-compatible servers yet")
        out = TextStream(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages))
        return out.attach(self._events(self._payload(messages, options), options, out))

    def _events(self, payload: dict[str, Any], options: GenerationOptions, out: TextStream) -> Iterator[str]:
        url = f"{self.base_url}/chat/completions"
        stop = StopStringFilter(options.stop)  # servers differ in honouring `stop`; enforce it here
        try:
            with self._client.stream("POST", url, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise BackendError(_http_error(url, response))
                for data in _sse_data(response.iter_lines()):
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
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece and not usage:
                            out.completion_tokens += 1
                        reason = choice.get("finish_reason")
                        if reason:
                            out.finish_reason = "length" if reason == "length" else "stop"
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
        if out.cancelled:
            out.finish_reason = "cancelled"

    def close(self) -> None:
        self._client.close()


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
