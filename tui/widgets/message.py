"""One message of the conversation: a role line and a Markdown body.

Model and user text is Markdown *content*: it is neutralized (tui.sanitize) before it reaches
the widget, Textual markup in it is never interpreted, and its single newlines are kept
(tui.linebreaks). An assistant message streams its
reply through ``Markdown.get_stream``, which batches fragments so the UI never flickers.

Until its first piece arrives, a pending reply shows on its role line that it is on its way:
what the agent reports (a long skill's progress) and the seconds waited, right above where
the text will appear.
"""

from __future__ import annotations

import re
import time
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from tui.linebreaks import LineBreaks, keep_line_breaks
from tui.sanitize import neutralize

__all__ = ["MessageView", "code_blocks", "progress_text"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1[`~]*[ \t]*$", re.S | re.M)


def code_blocks(markdown: str) -> list[str]:
    """The contents of the fenced code blocks in ``markdown``, in order."""
    return [match.group(2).rstrip("\n") for match in _FENCE.finditer(markdown)]


def progress_text(fraction: float, what: str, waited: float) -> str:
    """``▰▰▰▱▱▱▱▱ 40% · 2/5 parts · 6 s``: a skill's progress (no bar before it reports a
    fraction) and the seconds waited so far."""
    parts = []
    if 0.0 < fraction < 1.0:
        filled = round(fraction * 8)
        parts.append(f"{'▰' * filled}{'▱' * (8 - filled)} {fraction:.0%}")
    if what:
        parts.append(neutralize(what))
    if waited >= 1.0:
        parts.append(f"{int(waited)} s")
    return " · ".join(parts)


_OWN_KEYS = ("c", "b")
"""The keys of the BINDINGS below; any other printable key goes on to the input."""


class MessageView(Vertical, can_focus=True):
    """A user or assistant message. Focus it (click, Tab) to copy it or see its insight."""

    BINDINGS = [
        Binding("c", "copy", "Copy message"),
        Binding("b", "copy_code", "Copy code block"),
    ]

    class Selected(Message):
        """The message got focus (the insight panel follows it)."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    class TypedAhead(Message):
        """A printable key that is not one of the message's own: the user is typing a reply."""

        def __init__(self, character: str) -> None:
            super().__init__()
            self.character = character

    class CopyRequested(Message):
        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text = text
            self.what = what

    def __init__(self, role: str, text: str = "", *, meta: dict[str, Any] | None = None,
                 agent_name: str = "llmos", pending: bool = False) -> None:
        super().__init__(classes=f"message {role}" + (" pending" if pending else ""))
        self.role = role
        self.text = neutralize(text)
        self.meta: dict[str, Any] = dict(meta or {})
        self._agent_name = agent_name
        self._stream: MarkdownStream | None = None
        self._breaks = LineBreaks()
        self._next_block = 0
        self._since = time.monotonic()
        self._progress = (0.0, "thinking…")
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._role_line(), classes="role", markup=False)
        yield Markdown(keep_line_breaks(self.text) or None, open_links=False, classes="body")

    def on_mount(self) -> None:
        if self.waiting:
            self._ticker = self.set_interval(1.0, self._show_progress)

    @property
    def waiting(self) -> bool:
        """A pending reply that has no text yet."""
        return self.has_class("pending") and self._stream is None

    def show_progress(self, fraction: float, what: str) -> None:
        """What the agent reports while the reply is on its way (shown until its first piece)."""
        self._progress = (fraction, what)
        self._show_progress()

    @property
    def progress(self) -> str:
        """What the role line says while the reply is on its way ("" once it is not)."""
        return progress_text(*self._progress, time.monotonic() - self._since) if self.waiting else ""

    def _show_progress(self) -> None:
        if self.is_mounted:
            self.query_one(".role", Static).update(self._role_line())

    def _stop_waiting(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._show_progress()

    def _role_line(self) -> Content:
        if self.role == "user":
            return Content("you")
        if self.waiting:
            return Content(neutralize(f"{self._agent_name} · {self.progress}"))
        parts = [self._agent_name]
        if self.meta.get("skill"):
            parts.append(str(self.meta["skill"]))
        total = (self.meta.get("timings_ms") or {}).get("total")
        if total:
            parts.append(f"{total / 1000:.1f}s")
        if self.meta.get("finish_reason") == "cancelled":
            parts.append("stopped")
        elif self.meta.get("finish_reason") == "length":
            parts.append("cut at max tokens")
        return Content(neutralize(" · ".join(parts)))

    @property
    def body(self) -> Markdown:
        return self.query_one(Markdown)

    async def write(self, piece: str) -> None:
        """Append a neutralized piece of the streamed reply."""
        if not piece:
            return
        if self._stream is None:
            self.remove_class("pending")
            self._stream = Markdown.get_stream(self.body)
            self._stop_waiting()
        self.text += piece
        await self._stream.write(self._breaks.feed(piece))

    async def finish(self, meta: dict[str, Any] | None = None) -> None:
        """The reply is complete (or stopped): flush the stream and show its details."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.remove_class("pending")
        self._stop_waiting()
        if meta is not None:
            self.meta = dict(meta)
        if not self.text and self.meta.get("finish_reason") == "cancelled":
            await self.body.update("*(stopped before any text)*")
        self.query_one(".role", Static).update(self._role_line())

    def on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and event.key not in _OWN_KEYS:
            event.stop()
            event.prevent_default()
            self.post_message(self.TypedAhead(event.character))

    def on_focus(self) -> None:
        self.post_message(self.Selected(self))

    def action_copy(self) -> None:
        self.post_message(self.CopyRequested(self.text, "message"))

    def action_copy_code(self) -> None:
        blocks = code_blocks(self.text)
        if not blocks:
            self.notify("This message has no code block.", severity="warning", markup=False)
            return
        index = self._next_block % len(blocks)
        self._next_block = index + 1
        self.post_message(self.CopyRequested(blocks[index], f"code block {index + 1}/{len(blocks)}"))

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        # Links in model text are never opened on a click: copy them, the user decides.
        event.stop()
        self.post_message(self.CopyRequested(event.href, "link"))
