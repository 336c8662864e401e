"""llmos core: the dialogue manager, the model library, backends, config and errors.

Heavy parts (torch, transformers) load on first use, so ``import agent`` and
``llmos --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config import AgentConfig, load_config
from agent.errors import (
    BackendError,
    ConfigError,
    InputError,
    LlmosError,
    MemoryStoreError,
    ModelError,
    SkillError,
)
from agent.lazy import lazy_getattr
from agent.options import GenerationOptions
from agent.turn import Label, MemoryRef, Reply

if TYPE_CHECKING:
    from agent.dialogue import Agent, TurnStream
    from agent.models.loader import load_model
    from agent.models.model import LanguageModel

__all__ = [
    "Agent",
    "TurnStream",
    "AgentConfig",
    "load_config",
    "load_model",
    "LanguageModel",
    "GenerationOptions",
    "Reply",
    "Label",
    "MemoryRef",
    "LlmosError",
    "ConfigError",
    "ModelError",
    "BackendError",
    "SkillError",
    "MemoryStoreError",
    "InputError",
]

_LAZY = {
    "Agent": "agent.dialogue",
    "TurnStream": "agent.dialogue",
    "load_model": "agent.models.loader",
    "LanguageModel": "agent.models.model",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
