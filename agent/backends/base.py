"""The backend contract: one essential method, ``stream``.

A backend turns chat messages into a stream of text pieces. The full reply is the join of
the stream (:func:`complete`). Backends also say how to count tokens and how long a
context they take, so the dialogue manager can keep prompts inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agent.models.textstream import TextStream
from agent.options import GenerationOptions

__all__ = ["Backend", "Message", "complete"]

Message = dict[str, str]


@runtime_checkable
class Backend(Protocol):
    name: str
    """The model name, for display and the server's /v1/models."""
    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus reply) the model accepts."""
        ...

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> TextStream:
        """Start generating a reply to ``messages``; iterate the result for text pieces.
        Failures raise :class:`~agent.errors.BackendError` with what to do about them."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's prompt (an estimate where no tokenizer is local)."""
        ...


def complete(backend: Backend, messages: Sequence[Message], options: GenerationOptions | None = None) -> str:
    """The whole reply: the join of the stream."""
    return backend.stream(messages, options or GenerationOptions()).text()
