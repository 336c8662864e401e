"""The insight panel: what the agent made of one turn.

Intent and confidence, sentiment and frustration, the skill used, the memories recalled
(with scores and a button to forget one), per-stage timings and tokens per second. It shows
the reply's ``meta`` (a ``Reply`` dumped to JSON-able dicts); memory text is content.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Static

from tui.sanitize import neutralize, one_line

__all__ = ["InsightPanel", "tokens_per_second"]


MIN_STREAM_MS = 20.0
"""A reply whose pieces came over less time than this after the first one was not decoded
while it streamed (a skill's ready-made answer arrives in well under a millisecond): it gets
no tokens/s, which would only divide its length by nothing."""


def tokens_per_second(meta: dict[str, Any]) -> float | None:
    """The decode rate of a reply the model generated as it streamed, or None.

    Tokens after the first over the time from the first piece to the end of the generate stage
    (as ``llmos bench`` measures decoding). A reply that did not stream over at least
    :data:`MIN_STREAM_MS` has none: its tokens were counted from its text, not decoded then.
    Stored replies without a first-token time fall back to tokens over the generate stage.
    """
    completion = float((meta.get("tokens") or {}).get("completion") or 0)
    timings = meta.get("timings_ms") or {}
    generate = timings.get("generate") or timings.get("total")
    if not completion or not generate:
        return None
    first = timings.get("first_token")
    if first is None:
        return completion / (float(generate) / 1000.0)
    span = float(generate) - float(first)
    if completion < 2 or span < MIN_STREAM_MS:
        return None
    return (completion - 1) / (span / 1000.0)


def _label(value: Any) -> str:
    if not value:
        return "—"
    return f"{one_line(str(value.get('label', '?')), 40)} ({float(value.get('score', 0.0)):.2f})"


class MemoryRow(Horizontal):
    def __init__(self, memory: dict[str, Any]) -> None:
        super().__init__(classes="memory-row")
        self.memory_id = int(memory.get("id", -1))
        self._memory = memory

    def compose(self) -> ComposeResult:
        memory = self._memory
        source = f" · {one_line(str(memory['source']), 30)}" if memory.get("source") else ""
        head = f"{float(memory.get('score', 0.0)):.2f} {one_line(str(memory.get('kind', '')), 12)}{source}"
        yield Static(Content(f"{head}\n{neutralize(str(memory.get('text', '')))}"), classes="memory-text")
        yield Button("✕", classes="forget", compact=True, tooltip="Forget this memory")


class InsightPanel(VerticalScroll):
    class ForgetMemory(Message):
        def __init__(self, memory_id: int) -> None:
            super().__init__()
            self.memory_id = memory_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.meta: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static("Insight", classes="panel-title")
        yield Static(Content("Send a message, or focus a reply, to see what the agent made of it."),
                     id="insight-summary")
        yield Vertical(id="insight-memories")
        yield Static("", id="insight-timings")

    def show(self, meta: dict[str, Any] | None) -> None:
        """Show one reply's insight (None: nothing to show)."""
        self.meta = meta
        if not self.is_mounted:
            return
        summary = self.query_one("#insight-summary", Static)
        memories = self.query_one("#insight-memories", Vertical)
        memories.remove_children()
        if not meta:
            summary.update(Content("No insight for this message."))
            self.query_one("#insight-timings", Static).update("")
            return
        frustration = meta.get("frustration")
        lines = [
            f"intent     {_label(meta.get('intent'))}",
            f"sentiment  {_label(meta.get('sentiment'))}",
            f"frustrated {'—' if frustration is None else f'{float(frustration):.2f}'}",
            f"skill      {one_line(str(meta.get('skill') or 'chat'), 20)}",
        ]
        if meta.get("handoff"):
            lines.append("handoff    yes: a human should take over")
        recalled = meta.get("memories") or []
        lines.append(f"memories   {len(recalled)} recalled")
        lines += self._tool_lines(meta.get("tool_calls") or [])
        summary.update(Content("\n".join(lines)))
        memories.mount_all(MemoryRow(memory) for memory in recalled)
        self.query_one("#insight-timings", Static).update(Content(self._timings(meta)))

    @staticmethod
    def _tool_lines(calls: list[dict[str, Any]]) -> list[str]:
        """Each tool call of the turn: ok or not, name(arguments), its time and result (one line each,
        plain text: arguments and results are model and tool output, never markup)."""
        if not calls:
            return []
        lines = [f"tools      {len(calls)} call{'s' if len(calls) != 1 else ''}"]
        for call in calls:
            args = ", ".join(f"{k}={v!r}" for k, v in (call.get("arguments") or {}).items())
            mark = "ok " if call.get("ok", True) else "err"
            signature = f"{call.get('name')}({args})"
            lines.append(f"  {mark} {one_line(signature, 40)} {float(call.get('ms') or 0):.0f} ms")
            lines.append(f"      -> {one_line(str(call.get('result', '')), 44)}")
        return lines

    @staticmethod
    def _timings(meta: dict[str, Any]) -> str:
        timings = meta.get("timings_ms") or {}
        lines = ["timings (ms)"]
        for stage, ms in timings.items():
            if stage != "total":
                lines.append(f"  {one_line(str(stage), 12):<12}{float(ms):>9.1f}")
        if "total" in timings:
            lines.append(f"  {'total':<12}{float(timings['total']):>9.1f}")
        tokens = meta.get("tokens") or {}
        lines.append(f"tokens     {tokens.get('prompt', 0)} in · {tokens.get('completion', 0)} out")
        rate = tokens_per_second(meta)
        lines.append(f"speed      {rate:.1f} tok/s" if rate else "speed      —")
        return "\n".join(lines)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        row = next((a for a in event.button.ancestors if isinstance(a, MemoryRow)), None)
        if row is not None:
            event.stop()
            self.post_message(self.ForgetMemory(row.memory_id))

    def drop_memory(self, memory_id: int) -> None:
        """Remove a forgotten memory from the panel."""
        for row in self.query(MemoryRow):
            if row.memory_id == memory_id:
                row.remove()
