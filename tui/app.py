"""The llmos terminal chat app.

``ChatApp`` gets an agent, or a factory that builds one (then a loading screen with a
progress bar runs it in a worker thread). It never builds a backend itself. Given a
``state_file``, it reopens the session the user had open last; given a ``log_file``, the log
records that would be written over the screen go there (tui.logs).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.driver import Driver

from tui.logs import OffScreenLogs
from tui.paste import paste_safe_driver
from tui.sanitize import one_line
from tui.screens import ChatScreen, HelpScreen, LoadingScreen
from tui.state import LastSession
from tui.types import AgentFactory, AgentLike

__all__ = ["ChatApp"]


class ChatApp(App[int]):
    """``ChatApp(agent)`` or ``ChatApp(agent_factory=lambda progress: Agent.from_config(...))``."""

    CSS_PATH = "app.tcss"
    TITLE = "llmos"
    BINDINGS = [Binding("f1", "help", "Help", show=False)]

    def __init__(self, agent: AgentLike | None = None, *, agent_factory: AgentFactory | None = None,
                 user_id: str = "local", session_id: str | None = None, state_file: Path | None = None,
                 log_file: Path | None = None) -> None:
        if (agent is None) == (agent_factory is None):
            raise ValueError("ChatApp needs an agent or an agent_factory (exactly one)")
        super().__init__()
        self.agent = agent
        self._factory = agent_factory
        self.user_id = user_id
        self._session_id = session_id
        self._last_session = LastSession(state_file) if state_file is not None else None
        self._logs = OffScreenLogs(log_file)
        self.exit_code = 0
        """1 after the agent failed to start."""

    def get_driver_class(self) -> type[Driver]:
        # Pastes that hold escape bytes arrive whole and in order (see tui.paste).
        return paste_safe_driver(super().get_driver_class())

    def on_mount(self) -> None:
        self._logs.start()
        if self.agent is not None:
            self.push_screen(self._chat_screen(self.agent))
        else:
            assert self._factory is not None
            self.push_screen(LoadingScreen(self._factory))

    def _chat_screen(self, agent: AgentLike) -> ChatScreen:
        return ChatScreen(agent, user_id=self.user_id, session_id=self._session_id, last_session=self._last_session)

    def on_loading_screen_loaded(self, event: LoadingScreen.Loaded) -> None:
        self.agent = event.agent
        self.sub_title = one_line(event.agent.model_name, 60)
        self.switch_screen(self._chat_screen(event.agent))
        for warning in event.warnings[:5]:
            self.notify(one_line(warning, 400), title="Warning", severity="warning", timeout=20, markup=False)

    def on_loading_screen_failed(self, event: LoadingScreen.Failed) -> None:
        error = event.error
        text = str(error) if error.__class__.__module__.startswith("agent") else f"{type(error).__name__}: {error}"
        self.notify(one_line(text, 600), title="Could not start the agent", severity="error", timeout=30,
                    markup=False)
        screen = self.screen
        if isinstance(screen, LoadingScreen):
            screen.show_error(text)
        self.exit_code = 1

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                await screen.stop_generation()
        self.exit(self.exit_code, return_code=self.exit_code)

    def on_unmount(self) -> None:
        if self.agent is not None:
            for hook in list(getattr(self.agent, "on_handoff", None) or []):
                close = getattr(hook, "close", None)  # a webhook notifier: end its sender thread
                if callable(close):
                    try:
                        close()
                    except Exception:
                        pass
            try:
                self.agent.close()
            except Exception:  # closing on the way out must not hide the real exit status
                pass
        self._logs.stop()
