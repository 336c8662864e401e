"""llmos's terminal UI: ``llmos chat [--config FILE]`` runs :func:`run_chat`
(:func:`build_app` builds the same app without running it, for tests).

``ChatApp`` is imported lazily so that ``import tui`` (and ``llmos --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ChatApp", "build_app", "run_chat"]

if TYPE_CHECKING:
    from tui.app import ChatApp


def __getattr__(name: str) -> Any:
    if name == "ChatApp":
        from tui.app import ChatApp

        return ChatApp
    raise AttributeError(f"module 'tui' has no attribute {name!r}")


def build_app(config_path: str | None = None, *, user_id: str = "local") -> ChatApp:
    """The chat app for the agent that ``config_path`` describes (None: the default agent).

    The config is validated here, before any screen opens, so a bad file raises a
    :class:`~agent.errors.ConfigError` with a clear message; the model itself loads behind
    the app's progress bar.
    """
    from agent.config import load_config
    from tui.app import ChatApp

    load_config(config_path)  # raises ConfigError with a clear message, before the UI starts

    def build(progress: Any) -> Any:
        from agent import Agent

        return Agent.from_config(config_path, progress=progress)

    return ChatApp(agent_factory=build, user_id=user_id)


def run_chat(config_path: str | None = None, *, user_id: str = "local") -> int:
    """Run the chat app (see :func:`build_app`); returns the exit code."""
    app = build_app(config_path, user_id=user_id)
    app.run()
    return int(app.return_code or 0)
