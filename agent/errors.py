"""The llmos exception tree.

Every error the library raises on purpose derives from :class:`LlmosError`, and its
message says what went wrong *and how to fix it*. The library raises; the CLI, the
terminal UI and the HTTP server render.

::

    LlmosError
    ├── ConfigError        a config file, key or value is wrong
    ├── ModelError         a model cannot be found, converted or loaded
    ├── BackendError       a backend failed while generating (server down, bad reply)
    ├── SkillError         a skill failed to load or run
    ├── MemoryStoreError   the memory store or knowledge base failed
    └── InputError         user input was rejected (empty, too long, malformed)

``MemoryStoreError`` is deliberately not called ``MemoryError``: that would shadow the
builtin.
"""

from __future__ import annotations

__all__ = [
    "LlmosError",
    "ConfigError",
    "ModelError",
    "BackendError",
    "SkillError",
    "MemoryStoreError",
    "InputError",
]


class LlmosError(Exception):
    """Root of every error llmos raises on purpose."""


class ConfigError(LlmosError):
    """A configuration file, key or value is invalid."""


class ModelError(LlmosError):
    """A model cannot be found, converted or loaded."""


class BackendError(LlmosError):
    """A generation backend failed."""


class SkillError(LlmosError):
    """A skill failed to load or to run."""


class MemoryStoreError(LlmosError):
    """The memory store or the knowledge base failed."""


class InputError(LlmosError):
    """User input was rejected; nothing was stored for it."""
