"""The backend contract: one essential method, ``stream``.

A backend turns chat messages into a stream of text pieces. The full reply is the join of
the stream (:func:`complete`). Backends also say how to count tokens and how long a
context they take, so the dialogue manager can keep prompts inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from agent.models.textstream import TextStream
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec

__all__ = ["Backend", "Message", "complete"]

Message = dict[str, Any]
"""An OpenAI-style chat message: ``role`` and ``content``; an assistant message that called
tools also has ``tool_calls`` (OpenAI's shape), a ``tool`` message has ``tool_call_id``."""


@runtime_checkable
class Backend(Protocol):
    name: str
    """The model name, for display and the server's /v1/models."""
    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus reply) the model accepts."""
        ...

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        """Start generating a reply to ``messages``; iterate the result for text pieces.

        With ``tools`` the model may call them (``tool_choice``: ``auto``, ``none``,
        ``required`` or a tool's name): the calls arrive in the stream's ``tool_calls`` and
        ``finish_reason`` is ``tool_calls``. ``response_format`` asks for a JSON reply.
        Failures raise :class:`~agent.errors.BackendError` with what to do about them."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's prompt (an estimate where no tokenizer is local)."""
        ...


def complete(backend: Backend, messages: Sequence[Message], options: GenerationOptions | None = None) -> str:
    """The whole reply: the join of the stream."""
    return backend.stream(messages, options or GenerationOptions()).text()
