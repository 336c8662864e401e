"""The part of the Agent API the terminal UI uses, as structural types.

The app is written against these protocols, not against :class:`agent.Agent` itself, so
tests hand it a fake and the UI never builds a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

__all__ = ["AgentLike", "TurnStreamLike", "SessionLike", "MessageLike", "MemoryLike", "AgentFactory",
           "Progress"]

Progress = Callable[[float, str], None]
"""``progress(fraction, message)`` while the model converts or loads."""


class SessionLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str | None: ...

    @property
    def turns(self) -> int: ...


class MessageLike(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...

    @property
    def meta(self) -> dict[str, Any]: ...


class MemoryLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def kind(self) -> str: ...


class TurnStreamLike(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def reply(self) -> Any: ...

    def __iter__(self) -> Iterator[str]: ...

    def cancel(self) -> None: ...


class AgentLike(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def config(self) -> Any: ...

    def stream(self, text: str, user_id: str = ..., session_id: str | None = ...,
               progress: Callable[[float, str], None] | None = ...) -> TurnStreamLike: ...

    def sessions(self, user_id: str = ...) -> Sequence[SessionLike]: ...

    def new_session(self, user_id: str = ..., title: str | None = ...) -> SessionLike: ...

    def rename_session(self, session_id: str, title: str) -> Any: ...

    def delete_session(self, session_id: str) -> Any: ...

    def history(self, session_id: str) -> Sequence[MessageLike]: ...

    def remember(self, user_id: str) -> Sequence[MemoryLike]: ...

    def forget_memory(self, ids: Sequence[int]) -> Any: ...

    def forget_user(self, user_id: str) -> Any: ...

    def add_document(self, path: str, user_id: str | None = ...) -> int: ...

    def close(self) -> None: ...


AgentFactory = Callable[[Progress], AgentLike]
"""Builds the agent (blocking; the loading screen calls it in a worker thread)."""
