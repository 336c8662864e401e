"""Small modal dialogs: ask for a line of text, confirm, attach a file."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Input, Static

from tui.sanitize import one_line

__all__ = ["AskText", "Confirm", "AttachFile", "PathSuggester", "PathInput"]


class AskText(ModalScreen[str | None]):
    """Ask for one line of text (a session title, a file name); None when cancelled.
    ``path=True``: the answer is a file path, and Right/Tab complete it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "", *, path: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self._question = question
        self._value = value
        self._placeholder = placeholder
        self._path = path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(one_line(self._question, 300)), classes="dialog-title")
            if self._path:
                yield PathInput(self._value, placeholder=self._placeholder, id="answer")
            else:
                yield Input(self._value, placeholder=self._placeholder, id="answer")

    def on_mount(self) -> None:
        answer = self.query_one("#answer", Input)
        answer.cursor_position = len(answer.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog-screen")
        self._question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(one_line(self._question, 300)), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (n)", id="no", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PathSuggester(Suggester):
    """Completes file paths (the first entry of the directory that matches)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        folder, stem = (path, "") if value.endswith("/") else (path.parent, path.name)
        try:
            names = sorted(entry.name for entry in folder.iterdir() if entry.name.startswith(stem))
        except OSError:
            return None
        if not names:
            return None
        return value + names[0][len(stem):] + ("/" if (folder / names[0]).is_dir() else "")


class PathInput(Input):
    """A path field: Right or Tab takes the suggested completion; Tab with nothing to
    complete moves on to the next widget, as usual."""

    BINDINGS = [Binding("tab", "complete", "Complete the path", show=False)]

    def __init__(self, value: str = "", *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(value, placeholder=placeholder, id=id, suggester=PathSuggester())

    async def action_complete(self) -> None:
        # Asked here rather than read from the suggestion shown: that one comes from a worker
        # and may not be there yet when Tab follows the last key at once.
        suggestion = await PathSuggester().get_suggestion(self.value) if self.cursor_at_end else None
        if suggestion and suggestion != self.value:
            self.value = suggestion
            self.cursor_position = len(suggestion)
        else:
            self.screen.focus_next()


class AttachFile(ModalScreen[tuple[str, str] | None]):
    """Pick a file and where it goes: ``("kb", path)`` or ``("message", path)``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self._path = path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Attach a file (Right/Tab completes the path)", classes="dialog-title")
            yield PathInput(self._path, placeholder="path/to/file.md", id="path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Knowledge base", id="kb", variant="primary", compact=True)
                yield Button("Into message", id="message", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._choose("kb")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self._choose(event.button.id or "cancel")

    def _choose(self, where: str) -> None:
        path = self.query_one("#path", Input).value.strip()
        self.dismiss((where, path) if where != "cancel" and path else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
