"""The skill contract: one method, ``run(request) -> Iterator[str]``.

A skill gets everything it needs in the :class:`SkillRequest` (the backend, the memory
store, the conversation so far, the agent's config) and yields the reply as text pieces,
like a backend does. Skills never reach into global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from agent.backends.base import Backend
    from agent.models.config import ModelConfig
    from agent.options import GenerationOptions
    from agent.turn import Label, MemoryBackend, MemoryRef
    from memory.config import MemoryConfig
    from skills.config import SkillsConfig

__all__ = ["Skill", "SkillRequest", "AgentSettings"]


class AgentSettings(Protocol):
    """What a skill may read of the agent's configuration (an :class:`~agent.config.AgentConfig`
    is one): its name and persona, and the sections of the layers at or below skills. Declared
    here so that skills never import the dialogue layer that runs them."""

    @property
    def name(self) -> str: ...

    @property
    def persona(self) -> str: ...

    @property
    def model(self) -> ModelConfig: ...

    @property
    def generation(self) -> GenerationOptions: ...

    @property
    def memory(self) -> MemoryConfig: ...

    @property
    def skills(self) -> SkillsConfig: ...


@dataclass
class SkillRequest:
    """One turn handed to a skill."""

    text: str
    """The user's message, without the slash command if one was used."""
    command: str | None
    """The slash command that selected the skill (``"qa"`` for ``/qa ...``), or None when routed by intent."""
    user_id: str
    session_id: str
    backend: Backend
    memory: MemoryBackend | None
    config: AgentSettings
    """The agent's configuration, read-only (``config.skills.sandbox``, ``config.model.name``...)."""
    options: GenerationOptions
    history: list[dict[str, str]]
    """The session so far, oldest first, as ``{"role", "content"}`` (this turn not included)."""
    messages: list[dict[str, str]]
    """The chat prompt the agent would send without the skill (persona, history, recalled
    reference block, this message): a skill that just wants to answer may stream it."""
    recalled: list[MemoryRef] = field(default_factory=list)
    intent: Label | None = None
    vector: Any = None
    """The turn's embedding (reuse it for searches instead of embedding again)."""
    should_stop: Callable[[], bool] = lambda: False
    """True once the user cancelled; long skills check it between steps."""
    sources: list[MemoryRef] = field(default_factory=list)
    """Passages the skill used; they are reported in ``Reply.memories``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Skill-specific results (e.g. code check results), stored with the reply."""
    progress: Callable[[float, str], None] | None = None
    """Where a long skill reports how far it got (fraction done, message): the CLI draws a
    bar from it. None when nobody is watching."""


@runtime_checkable
class Skill(Protocol):
    name: str
    description: str
    intents: tuple[str, ...]
    """Intent labels this skill serves (routing through ``understanding.routes`` by default)."""
    command: str | None
    """Slash command without the slash (``"qa"``), or None."""

    def run(self, request: SkillRequest) -> Iterator[str]:
        """Yield the reply as text pieces. Raise :class:`~agent.errors.SkillError` with a
        message for the user when the skill cannot help; the agent falls back to chat."""
        ...
