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

__all__ = ["FakeBackend", "FakeCall"]


@dataclass
class FakeCall:
    messages: list[Message]
    options: GenerationOptions


class FakeBackend:
    """Replies with queued texts (``enqueue``), else an echo of the last user message.

    Each reply streams word by word; ``delay`` seconds between pieces lets tests cancel
    mid-stream. A queued exception is raised when its turn comes. Token counts are
    whitespace-separated words.
    """

    def __init__(self, replies: Sequence[str] = (), *, delay: float = 0.0, context_window: int = 4096,
                 name: str = "fake") -> None:
        self.name = name
        self.context_window = context_window
        self.delay = delay
        self.history: list[FakeCall] = []
        self._queue: deque[str | Exception] = deque(replies)
        self._lock = threading.Lock()

    def enqueue(self, *replies: str | Exception) -> None:
        with self._lock:
            self._queue.extend(replies)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> TextStream:
        with self._lock:
            self.history.append(FakeCall([dict(m) for m in messages], options))
            reply = self._queue.popleft() if self._queue else None
        if isinstance(reply, Exception):
            raise reply
        if reply is None:
            last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            reply = f"You said: {last}"
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        out = TextStream(prompt_tokens=prompt)
        return out.attach(self._pieces(reply, options, out))

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
