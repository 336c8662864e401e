"""llmos's terminal UI: ``llmos chat [--config FILE] [--model NAME]`` runs :func:`run_chat`
(:func:`build_app` builds the same app without running it, for tests).

``ChatApp`` is imported lazily so that ``import tui`` (and ``llmos --help``) stay fast. The
app ``llmos chat`` runs reopens the session the user had open last (``tui-state.json`` in the
data directory) and logs to ``chat.log`` there instead of over the screen.
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


def build_app(config_path: str | None = None, *, user_id: str = "local", model: str | None = None) -> ChatApp:
    """The chat app for the agent that ``config_path`` describes (None: the default agent);
    ``model`` (a preset, folder, .gguf file or HF id) replaces the config's model.

    The config is validated here, before any screen opens, so a bad file raises a
    :class:`~agent.errors.ConfigError` with a clear message; the model itself loads behind
    the app's progress bar.
    """
    from agent.config import load_config
    from tui.app import ChatApp
    from tui.state import STATE_FILE

    # raises ConfigError with a clear message, before the UI starts
    config = load_config(config_path, overrides={"model": {"name": model}} if model else None)

    def build(progress: Any) -> Any:
        from agent import Agent
        from tui.handoff import attach_webhook

        agent = Agent.from_config(config, progress=progress)
        attach_webhook(agent)  # a handoff pages the config's helpdesk, as under `llmos serve`
        return agent

    data_dir = config.resolved_data_dir()
    return ChatApp(agent_factory=build, user_id=user_id, state_file=data_dir / STATE_FILE,
                   log_file=data_dir / "chat.log")


def run_chat(config_path: str | None = None, *, user_id: str = "local", model: str | None = None) -> int:
    """Run the chat app (see :func:`build_app`); returns the exit code."""
    app = build_app(config_path, user_id=user_id, model=model)
    app.run()
    return int(app.return_code or 0)
