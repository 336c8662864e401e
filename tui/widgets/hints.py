"""The list of matching /commands shown above the input while the user types one."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui import commands

__all__ = ["CommandHints"]


class CommandHints(Static):
    def show_for(self, text: str) -> None:
        found = commands.matches(text)
        self.display = bool(found) and text != ""
        if found:
            lines = [f"{c.name} {c.args}".ljust(22) + c.help for c in found]
            self.update(Content("\n".join(lines)))
