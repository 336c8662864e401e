"""The /memory screen: what the agent remembers about the user, with delete and forget-all."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from agent.errors import LlmosError
from tui.sanitize import one_line
from tui.types import AgentLike

__all__ = ["MemoryScreen"]


class MemoryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("d,delete", "forget", "Forget selected"),
    ]

    def __init__(self, agent: AgentLike, user_id: str) -> None:
        super().__init__(classes="dialog-screen")
        self._agent = agent
        self._user_id = user_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog memory"):
            yield Static("Memory (d forgets the selected one, Escape closes)", classes="dialog-title")
            yield OptionList(id="memory-list", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Forget selected", id="forget-one", compact=True)
                yield Button("Forget everything", id="forget-all", variant="error", compact=True)
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        listing = self.query_one(OptionList)
        listing.clear_options()
        try:
            memories = list(self._agent.remember(self._user_id))
        except LlmosError as exc:
            self.notify(one_line(str(exc), 300), severity="error", markup=False)
            memories = []
        for memory in memories:
            listing.add_option(Option(Content(f"#{memory.id} {one_line(memory.kind, 10)}: "
                                              f"{one_line(memory.text, 300)}"), id=str(memory.id)))
        if not memories:
            listing.add_option(Option(Content("Nothing remembered (or memory is disabled)."), disabled=True))

    def action_forget(self) -> None:
        listing = self.query_one(OptionList)
        if listing.highlighted is None:
            return
        option = listing.get_option_at_index(listing.highlighted)
        if option.id is None:
            return
        self._agent.forget_memory([int(option.id)])
        self.notify(f"Forgot memory #{option.id}.", markup=False)
        self.refresh_list()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "forget-one":
            self.action_forget()
        elif event.button.id == "forget-all":
            self._agent.forget_user(self._user_id)
            self.notify("Forgot everything the agent remembered about you.", markup=False)
            self.refresh_list()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
