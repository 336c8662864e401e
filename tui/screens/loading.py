"""The first screen: build the agent in a worker thread and show its progress.

The first start converts the embedded model (~40 s on 2 cores) and later ones load the
cached weights (~2 s); the factory reports ``progress(fraction, message)``. Warnings logged
while the agent is built (a skill the config names that is not installed, a classifier
turned off) would otherwise vanish behind the full-screen UI: they travel with ``Loaded``
and the app shows them as notifications.
"""

from __future__ import annotations

import logging
import time

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


class _Collect(logging.Handler):
    """Keeps the messages of WARNING and worse records (each once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call must not break loading
            return
        if text not in self.messages:
            self.messages.append(text)


class LoadingScreen(Screen[None]):
    BINDINGS = [Binding("ctrl+q,q", "app.quit", "Quit")]

    STILL_AFTER = 3.0
    """Seconds on one step before the message counts them (the embedded model's load sits at
    one step for ~5 s: the count shows the app is not stuck)."""

    class Loaded(Message):
        def __init__(self, agent: AgentLike, warnings: tuple[str, ...] = ()) -> None:
            super().__init__()
            self.agent = agent
            self.warnings = warnings

    class Failed(Message):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    def __init__(self, factory: AgentFactory) -> None:
        super().__init__(id="loading")
        self._factory = factory
        self._message = "Starting…"
        self._since = time.monotonic()
        self._failed = False

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Static("llmos", id="loading-title")
            with Center():
                yield ProgressBar(total=1.0, show_eta=False, id="loading-bar")
            with Center():
                yield Static("Starting…", id="loading-message", markup=False)

    def on_mount(self) -> None:
        self.set_interval(0.5, self._count_seconds)
        self._load()

    def _count_seconds(self) -> None:
        waited = time.monotonic() - self._since
        if self._failed or waited < self.STILL_AFTER:
            return
        text = f"{one_line(self._message.rstrip('…. '), 300)}… {int(waited)} s"
        self.query_one("#loading-message", Static).update(Content(text))

    @work(thread=True, exit_on_error=False)
    def _load(self) -> None:
        collected = _Collect()
        root = logging.getLogger()
        root.addHandler(collected)
        try:
            agent = self._factory(self._progress_from_thread)
        except Exception as exc:  # any failure is shown, never a traceback
            self.post_message(self.Failed(exc))
            return
        finally:
            root.removeHandler(collected)
        self.post_message(self.Loaded(agent, tuple(collected.messages)))

    def _progress_from_thread(self, fraction: float, message: str) -> None:
        self.app.call_from_thread(self.set_progress, fraction, message)

    def set_progress(self, fraction: float, message: str) -> None:
        if message != self._message:
            self._message, self._since = message, time.monotonic()
        self.query_one(ProgressBar).update(progress=max(0.0, min(1.0, float(fraction))))
        self.query_one("#loading-message", Static).update(Content(one_line(message, 300)))

    def show_error(self, text: str) -> None:
        self._failed = True
        self.query_one(ProgressBar).display = False
        message = self.query_one("#loading-message", Static)
        message.add_class("error")
        message.update(Content(f"{one_line(text, 500)}\n\nPress q to quit."))
