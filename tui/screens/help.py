"""The help screen: key bindings and slash commands, from the tables in tui.commands."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.commands import COMMANDS, KEYS

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help", id="help"):
            yield Static("Keys   (Escape closes, arrows scroll)", classes="dialog-title")
            keys: DataTable[str] = DataTable(id="help-keys", show_header=False, cursor_type="none",
                                             zebra_stripes=True)
            yield keys
            yield Static("Commands", classes="dialog-title")
            yield DataTable(id="help-commands", show_header=False, cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        for table in self.query(DataTable):
            table.can_focus = False  # the scroll container takes the keys
        self.query_one("#help", VerticalScroll).focus()
        keys = self.query_one("#help-keys", DataTable)
        keys.add_columns("key", "does")
        keys.add_rows(KEYS)
        table = self.query_one("#help-commands", DataTable)
        table.add_columns("command", "does")
        table.add_rows((f"{c.name} {c.args}".strip(), c.help) for c in COMMANDS)

    def action_close(self) -> None:
        self.dismiss(None)
