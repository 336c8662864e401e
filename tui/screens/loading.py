"""The first screen: build the agent in a worker thread and show its progress.

The first start converts the embedded model (~40 s on 2 cores) and later ones load the
cached weights (~2 s); the factory reports ``progress(fraction, message)``.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ProgressBar, Static

from tui.sanitize import one_line
from tui.types import AgentFactory, AgentLike

__all__ = ["LoadingScreen"]


class LoadingScreen(Screen[None]):
    BINDINGS = [Binding("ctrl+q,q", "app.quit", "Quit")]

    class Loaded(Message):
        def __init__(self, agent: AgentLike) -> None:
            super().__init__()
            self.agent = agent

    class Failed(Message):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    def __init__(self, factory: AgentFactory) -> None:
        super().__init__(id="loading")
        self._factory = factory

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Static("llmos", id="loading-title")
            with Center():
                yield ProgressBar(total=1.0, show_eta=False, id="loading-bar")
            with Center():
                yield Static("Starting…", id="loading-message", markup=False)

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exit_on_error=False)
    def _load(self) -> None:
        try:
            agent = self._factory(self._progress_from_thread)
        except Exception as exc:  # any failure is shown, never a traceback
            self.post_message(self.Failed(exc))
            return
        self.post_message(self.Loaded(agent))

    def _progress_from_thread(self, fraction: float, message: str) -> None:
        self.app.call_from_thread(self.set_progress, fraction, message)

    def set_progress(self, fraction: float, message: str) -> None:
        self.query_one(ProgressBar).update(progress=max(0.0, min(1.0, float(fraction))))
        self.query_one("#loading-message", Static).update(Content(one_line(message, 300)))

    def show_error(self, text: str) -> None:
        self.query_one(ProgressBar).display = False
        message = self.query_one("#loading-message", Static)
        message.add_class("error")
        message.update(Content(f"{one_line(text, 500)}\n\nPress q to quit."))
