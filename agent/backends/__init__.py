"""Generation backends: ``transformers`` (local), ``openai`` (any compatible server), ``fake`` (tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.backends.base import Backend, Message, complete
from agent.backends.fake import FakeBackend

if TYPE_CHECKING:
    from agent.models.config import ModelConfig
    from agent.models.embedded import Progress

__all__ = ["Backend", "Message", "complete", "FakeBackend", "TransformersBackend", "OpenAIBackend", "build_backend"]


def __getattr__(name: str) -> Any:
    # The local backend pulls in torch; the openai one httpx. Import them on first use.
    if name == "TransformersBackend":
        from agent.backends.local import TransformersBackend

        return TransformersBackend
    if name == "OpenAIBackend":
        from agent.backends.openai import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(name)


def build_backend(config: ModelConfig, progress: Progress | None = None) -> Backend:
    """The backend an agent config asks for."""
    from agent.errors import ConfigError

    if config.backend == "fake":
        return FakeBackend(name=config.name)
    if config.backend == "openai":
        if not config.base_url:
            raise ConfigError("model.backend is openai but model.base_url is not set: e.g. http://127.0.0.1:8000/v1")
        from agent.backends.openai import OpenAIBackend

        return OpenAIBackend.from_env(config.base_url, config.name, config.api_key_env, timeout_s=config.timeout_s,
                                      context_window=config.context_window or 8192)
    from agent.backends.local import TransformersBackend
    from agent.models.loader import load_configured

    return TransformersBackend(load_configured(config, progress=progress))
