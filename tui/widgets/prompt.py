"""The message input: multi-line, Enter sends, history, /command completion, safe pastes.

- Enter sends; Shift+Enter or Ctrl+J inserts a newline (many terminals send Shift+Enter as
  plain Enter: Ctrl+J always works).
- Up on the first line / Down on the last line walk the sent-message history.
- A ``/word`` shows the matching commands (ghost text; Tab or Right completes).
- Page Up / Page Down scroll the conversation (the input keeps the focus), so the keyboard
  alone can read back while a reply streams.
- Pasted text is neutralized; a paste too large to edit comfortably (a 1 MB log) is folded
  into a ``[pasted text #N ...]`` placeholder that is expanded when the message is sent, so
  the editor stays responsive.
"""

from __future__ import annotations

import re

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from tui import commands
from tui.sanitize import neutralize

__all__ = ["PromptInput"]

FOLD_CHARS = 16_000
"""Pastes longer than this are folded into a placeholder."""
FOLD_LINE = 4_000
"""... and so are pastes with a line longer than this (long lines are what make editing slow)."""
_PLACEHOLDER = re.compile(r"\[pasted text #(\d+): [\d,]+ chars\]")


class PromptInput(TextArea):
    """Posts :class:`PromptInput.Submitted`; the screen decides whether to clear it."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    class Submitted(Message):
        def __init__(self, prompt: PromptInput, text: str, draft: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text
            """What to send: the draft with pasted placeholders expanded."""
            self.draft = draft
            """What the user sees in the editor (restored on error)."""

    class PageRequested(Message):
        """Page Up / Page Down: scroll the conversation by ``pages`` (negative: up)."""

        def __init__(self, pages: int) -> None:
            super().__init__()
            self.pages = pages

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         highlight_cursor_line=False, compact=True)
        self.placeholder = "Message (Enter send · Ctrl+J newline · /help)"
        self._history: list[str] = []
        self._history_index: int | None = None
        self._stash = ""
        self._pastes: dict[int, str] = {}

    # -- sending -------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Handled here, not as bindings: a binding's action runs after the keys that arrived
        # in the same burst ("line one<Ctrl+J>line two" typed fast would lose its order).
        if event.key in ("pageup", "pagedown"):
            event.stop()
            event.prevent_default()
            self.post_message(self.PageRequested(-1 if event.key == "pageup" else 1))
            return
        if event.key in ("enter", "shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                self.action_submit()
            else:
                self.action_newline()

    def action_submit(self) -> None:
        draft = self.text
        if not draft.strip():
            return
        self.post_message(self.Submitted(self, self.expand_pastes(draft), draft))

    def action_newline(self) -> None:
        result = self.replace("\n", *self.selection)
        self.move_cursor(result.end_location)

    def expand_pastes(self, draft: str) -> str:
        """The draft with its pasted-text placeholders replaced by the pasted text."""

        def paste(match: re.Match[str]) -> str:
            return self._pastes.get(int(match.group(1)), match.group())

        return _PLACEHOLDER.sub(paste, draft)

    def accept(self, draft: str) -> None:
        """The screen took the message: remember it and empty the editor."""
        if not self._history or self._history[-1] != draft:
            self._history.append(draft)
        self._history_index = None
        self.clear()

    def restore(self, draft: str) -> None:
        """Put a draft back (after an error), keeping anything typed since."""
        current = self.text
        self.load_text(draft if not current.strip() else f"{draft}\n{current}")
        self.move_cursor(self.document.end)
        self.focus()

    # -- pastes --------------------------------------------------------------------------

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        if not self.read_only:
            self.attach_text(event.text)

    def attach_text(self, text: str) -> None:
        """Insert pasted or attached text at the cursor, neutralized; fold it if it is huge."""
        text = neutralize(text)
        longest = max((len(line) for line in text.split("\n")), default=0)
        if len(text) > FOLD_CHARS or longest > FOLD_LINE:
            number = len(self._pastes) + 1
            self._pastes[number] = text
            text = f"[pasted text #{number}: {len(text):,} chars]"
        result = self.replace(text, *self.selection)
        self.move_cursor(result.end_location)
        self.focus()

    # -- history -------------------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self._history:
            super().action_cursor_up(select)
            return
        if self._history_index is None:
            self._stash = self.text
            self._history_index = len(self._history)
        if self._history_index > 0:
            self._history_index -= 1
            self._show(self._history[self._history_index], at_end=False)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self._history_index is None or self.cursor_location[0] < last_row:
            super().action_cursor_down(select)
            return
        self._history_index += 1
        if self._history_index >= len(self._history):
            self._history_index = None
            self._show(self._stash, at_end=True)
        else:
            self._show(self._history[self._history_index], at_end=True)

    def _show(self, text: str, *, at_end: bool) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end if at_end else (0, len(self.document[0])))

    # -- completion ----------------------------------------------------------------------

    def update_suggestion(self) -> None:
        text = self.text
        found = commands.matches(text)
        at_end = self.cursor_location == self.document.end
        if found and at_end and found[0].name != text:
            self.suggestion = found[0].name[len(text):]
        else:
            self.suggestion = ""

    def action_complete(self) -> None:
        text = self.text
        if not commands.matches(text):
            self.screen.focus_next()
            return
        completed = commands.complete(text)
        if completed != text:
            self.load_text(completed)
            self.move_cursor(self.document.end)
