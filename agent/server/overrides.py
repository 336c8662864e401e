"""Per-request sampling parameters for turns of the dialogue manager.

``Agent.stream`` generates with the agent's configured options; an HTTP client expects its
``temperature`` or ``max_tokens`` to count. The served agent's backend is wrapped in
:class:`OverridingBackend`: while a worker thread runs a turn inside
:func:`request_options`, generations that use the agent's configured options get the
request's values instead. Generations with other options (e.g. the history summary) are
left alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agent.backends.base import Backend, Message
from agent.models.textstream import TextStream
from agent.options import GenerationOptions, with_overrides
from agent.server.errors import ApiError
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec

__all__ = ["OverridingBackend", "request_options", "merged_options"]

_local = threading.local()


def merged_options(base: GenerationOptions, overrides: dict[str, Any]) -> GenerationOptions:
    """``base`` with ``overrides`` applied, validated (a bad value is a 400)."""
    try:
        return with_overrides(base, overrides)
    except ValueError as exc:
        raise ApiError(400, f"invalid sampling parameters: {exc}") from None


@contextmanager
def request_options(options: GenerationOptions | None) -> Iterator[None]:
    """Use ``options`` for the agent's generations on this thread (None: the config's)."""
    previous = getattr(_local, "options", None)
    _local.options = options
    try:
        yield
    finally:
        _local.options = previous


class OverridingBackend:
    """Delegates to ``inner``; applies the thread's request options (see the module doc)."""

    def __init__(self, inner: Backend, base: GenerationOptions) -> None:
        self.inner = inner
        self.base = base
        self.name = inner.name
        self.context_window = inner.context_window

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        chosen = getattr(_local, "options", None)
        if chosen is not None and options == self.base:
            options = chosen
        return self.inner.stream(messages, options, tools=tools, tool_choice=tool_choice,
                                 response_format=response_format)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
