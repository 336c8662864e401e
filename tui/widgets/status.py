"""The one-line status bar above the conversation: agent, model, session, what is happening."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.sanitize import one_line

__all__ = ["StatusLine"]


class StatusLine(Static):
    model = reactive("")
    session = reactive("")
    state = reactive("ready")

    def render(self) -> Content:
        width = self.content_region.width or self.size.width
        right = Content(one_line(self.state, 40))
        room = max(width - 22, width // 2)
        if right.cell_length > room:
            right = right.truncate(room, ellipsis=True)
        left = Content.assemble((one_line(self.model, 40), "bold"), " · ", one_line(self.session or "new chat", 60))
        left = left.truncate(max(0, width - right.cell_length - 1), ellipsis=True)
        gap = max(1, width - left.cell_length - right.cell_length)
        return Content.assemble(left, " " * gap, right)
