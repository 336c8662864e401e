"""The scrolling conversation: message views, anchored to the bottom while a reply streams
(the anchor lets go when the user scrolls up, and comes back when they scroll to the end).

Textual lets go of the anchor on any scroll call, one more Page Down at the very end
included, and only takes it back when the position *changes* to the end; ``page`` follows
new text again whenever it ends at the bottom."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from tui.types import MessageLike
from tui.widgets.message import MessageView

__all__ = ["Conversation", "Note"]

WELCOME = ("Type a message and press Enter. Ctrl+J adds a line, /help lists the commands, "
           "F1 the keys.")


Notes = Callable[[dict[str, Any]], str | None]
"""A reply's meta -> the note to show under it (e.g. a handoff), or None."""


class Note(Static):
    """A line from the app itself under a reply (not a message: never sent, never copied)."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(text), classes="note", markup=False)


class Conversation(VerticalScroll, can_focus=False):
    def __init__(self, *, agent_name: str = "llmos", id: str | None = None) -> None:
        super().__init__(id=id)
        self.agent_name = agent_name

    def compose(self) -> ComposeResult:
        # At least as tall as the view, so a short conversation starts at the top even while
        # the scroll position is anchored to the bottom.
        with Vertical(id="messages"):
            yield Static(WELCOME, classes="welcome", markup=False)

    @property
    def _list(self) -> Vertical:
        return self.query_one("#messages", Vertical)

    @property
    def messages(self) -> list[MessageView]:
        return list(self._list.query_children(MessageView))

    async def load(self, history: Sequence[MessageLike], notes: Notes | None = None) -> None:
        """Show a stored session (replaces what is shown), with ``notes`` under the replies."""
        await self._list.remove_children()
        views: list[Widget] = []
        for message in history:
            if message.role not in ("user", "assistant"):
                continue
            views.append(MessageView(message.role, message.content, meta=message.meta or {},
                                     agent_name=self.agent_name))
            note = notes(message.meta or {}) if notes is not None and message.role == "assistant" else None
            if note:
                views.append(Note(note))
        if views:
            await self._list.mount_all(views)
        else:
            await self._list.mount(Static(WELCOME, classes="welcome", markup=False))
        self.anchor()

    async def start_turn(self, text: str) -> tuple[MessageView, MessageView]:
        """Add the user's message and an empty reply to stream into."""
        await self._list.query_children(".welcome").remove()
        user = MessageView("user", text, agent_name=self.agent_name)
        reply = MessageView("assistant", agent_name=self.agent_name, pending=True)
        await self._list.mount_all([user, reply])
        self.anchor()
        return user, reply

    async def add_note(self, after: MessageView, text: str) -> Note:
        """Show ``text`` as a note under ``after``."""
        note = Note(text)
        await self._list.mount(note, after=after)
        return note

    def page(self, pages: int) -> None:
        """Scroll by whole pages (negative: up); at the end, follow new text again."""
        target = self.scroll_y + pages * max(1, self.scrollable_content_region.height)
        self.scroll_to(y=target, animate=False, immediate=True)
        self._follow_if_at_end()

    def _follow_if_at_end(self) -> None:
        if self.scroll_y >= self.max_scroll_y:
            self.anchor()

    def last_reply(self) -> MessageView | None:
        replies = [view for view in self.messages if view.role == "assistant"]
        return replies[-1] if replies else None
