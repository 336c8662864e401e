"""A scripted backend for tests: queue replies, inspect what it was asked."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agent.backends.base import Message
from agent.errors import BackendError
from agent.models.textstream import StopStringFilter, TextStream
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolCall, ToolChoice, ToolSpec

__all__ = ["FakeBackend", "FakeCall"]


@dataclass
class FakeCall:
    messages: list[Message]
    options: GenerationOptions
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    response_format: ResponseFormat | None = None


Scripted = str | Exception | ToolCall | list[ToolCall]
"""A queued reply: text, an exception to raise, or a call (or calls) of the offered tools."""


class FakeBackend:
    """Replies with queued texts (``enqueue``), else an echo of the last user message.

    Each reply streams word by word; ``delay`` seconds between pieces lets tests cancel
    mid-stream. A queued exception is raised when its turn comes. A queued
    :class:`~agent.toolcalls.ToolCall` (or list of them) is a reply that calls tools: the
    stream yields no text and reports the calls (the tools must have been offered). Token
    counts are whitespace-separated words.
    """

    def __init__(self, replies: Sequence[Scripted] = (), *, delay: float = 0.0, context_window: int = 4096,
                 name: str = "fake") -> None:
        self.name = name
        self.context_window = context_window
        self.delay = delay
        self.history: list[FakeCall] = []
        self._queue: deque[Scripted] = deque(replies)
        self._lock = threading.Lock()

    def enqueue(self, *replies: Scripted) -> None:
        with self._lock:
            self._queue.extend(replies)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        with self._lock:
            self.history.append(FakeCall([dict(m) for m in messages], options, tuple(tools), tool_choice,
                                         response_format))
            reply = self._queue.popleft() if self._queue else None
        if isinstance(reply, Exception):
            raise reply
        prompt = sum(self.count_tokens(str(m.get("content") or "")) for m in messages)
        out = TextStream(prompt_tokens=prompt)
        if isinstance(reply, (ToolCall, list)):
            calls = [reply] if isinstance(reply, ToolCall) else list(reply)
            offered = {t.name for t in tools}
            unknown = [c.name for c in calls if c.name not in offered]
            if unknown or tool_choice == "none":
                raise BackendError(f"the fake backend was scripted to call {unknown or [c.name for c in calls]}, "
                                   f"which the request did not offer (tools: {sorted(offered)}, "
                                   f"tool_choice: {tool_choice})")
            return out.attach(self._calls(calls, out))
        if reply is None:
            last = next((m.get("content") or "" for m in reversed(messages) if m["role"] == "user"), "")
            reply = f"You said: {last}"
        return out.attach(self._pieces(reply, options, out))

    @staticmethod
    def _calls(calls: list[ToolCall], out: TextStream) -> Iterator[str]:
        out.tool_calls = calls
        out.completion_tokens = sum(len(c.arguments_json().split()) + 1 for c in calls)
        out.finish_reason = "tool_calls"
        yield from ()

    def _pieces(self, reply: str, options: GenerationOptions, out: TextStream) -> Iterator[str]:
        stop = StopStringFilter(options.stop)
        words = reply.split(" ")
        for i, word in enumerate(words):
            if out.cancelled:
                out.finish_reason = "cancelled"
                return
            if i >= options.max_new_tokens:
                out.finish_reason = "length"
                return
            if self.delay:
                time.sleep(self.delay)
            out.completion_tokens += 1
            piece = stop.feed(word if i == 0 else " " + word)
            if piece:
                yield piece
            if stop.stopped:
                return
        tail = stop.flush()
        if tail:
            yield tail


def failing(message: str = "the fake backend was told to fail") -> BackendError:
    """A BackendError to enqueue in tests."""
    return BackendError(message)
