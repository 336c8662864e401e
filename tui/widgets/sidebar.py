"""The sessions sidebar: list, open, create, rename, delete (the screen does the work)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.sanitize import one_line
from tui.types import SessionLike

__all__ = ["SessionSidebar"]

TITLE_CELLS = 21
"""A title is cut to one line of the sidebar (26 cells wide in app.tcss, less its border,
the list's padding and the "● " marker); the status line and rename show it whole."""


class SessionSidebar(Vertical):
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("escape", "leave", "Back", show=False),
    ]

    class Selected(Message):
        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    class NewRequested(Message):
        pass

    class Left(Message):
        """Escape: back to the input."""

    class RenameRequested(Message):
        def __init__(self, session_id: str, title: str) -> None:
            super().__init__()
            self.session_id = session_id
            self.title = title

    class DeleteRequested(Message):
        def __init__(self, session_id: str, title: str) -> None:
            super().__init__()
            self.session_id = session_id
            self.title = title

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._titles: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("Sessions", classes="panel-title")
        yield OptionList(id="session-list", markup=False)
        yield Static("n new  r rename  d del", classes="panel-hint")

    @property
    def options(self) -> OptionList:
        return self.query_one(OptionList)

    def show(self, sessions: Sequence[SessionLike], current: str | None, highlight: str | None = None) -> None:
        """Replace the list; mark the current session, put the cursor on ``highlight`` (default:
        the current one)."""
        options = self.options
        options.clear_options()
        self._titles = {}
        for session in sessions:
            title = one_line(session.title or "New chat", 60)
            self._titles[session.id] = title
            marker = "● " if session.id == current else "  "
            shown = Content(title).truncate(TITLE_CELLS, ellipsis=True)
            options.add_option(Option(Content(marker) + shown, id=session.id))
        cursor = highlight if highlight in self._titles else current
        if cursor in self._titles:
            options.highlighted = options.get_option_index(cursor)

    def _highlighted(self) -> str | None:
        options = self.options
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Selected(event.option.id))

    def action_leave(self) -> None:
        self.post_message(self.Left())

    def action_new(self) -> None:
        self.post_message(self.NewRequested())

    def action_rename(self) -> None:
        if (session_id := self._highlighted()) is not None:
            self.post_message(self.RenameRequested(session_id, self._titles.get(session_id, "")))

    def action_delete(self) -> None:
        if (session_id := self._highlighted()) is not None:
            self.post_message(self.DeleteRequested(session_id, self._titles.get(session_id, "")))
