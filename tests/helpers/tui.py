"""Shortcuts for the terminal UI tests: the screen size, the chat screen's parts, typing and
sending through a Textual pilot, waiting for workers, and the screen as text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tui.app import ChatApp
from tui.screens.chat import ChatScreen
from tui.widgets import MessageView, PromptInput

SIZE = (80, 24)


def chat(app: ChatApp) -> ChatScreen:
    screen = app.screen
    if not isinstance(screen, ChatScreen):
        screen = next(s for s in app.screen_stack if isinstance(s, ChatScreen))
    return screen


def prompt(app: ChatApp) -> PromptInput:
    return chat(app).prompt


def messages(app: ChatApp) -> list[MessageView]:
    return chat(app).conversation.messages


def notes(app: ChatApp) -> list[str]:
    return [n.message for n in app._notifications]


async def type_text(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Put ``text`` in the input as if typed (newlines included) and leave the cursor at the end."""
    box = prompt(pilot.app)
    box.focus()
    box.load_text(text)
    box.move_cursor(box.document.end)


async def send(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type and send a message, then wait until its reply is complete.

    It submits through the input's action, not a key press: ``pilot.press`` waits for the
    process to go idle (up to a second per key), which adds up; Enter itself is tested in
    test_tui_input.py."""
    await type_text(pilot, text)
    prompt(pilot.app).action_submit()
    await settle(pilot)


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await asyncio.wait_for(pilot.app.workers.wait_for_complete(), 15)
    await pilot.pause()
    await pilot.pause()


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
        await pilot.pause()


def screen_lines(app: ChatApp) -> list[str]:
    """The screen as the terminal would draw it, one string per row (from the SVG export:
    each run of text sits at its own x, so the blanks between runs are kept)."""
    import html
    import re

    from rich.cells import cell_len

    svg = app.export_screenshot()
    rows: dict[int, str] = {}
    for x, line, text in re.findall(
            r'<text [^>]*?x="([\d.]+)"[^>]*clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>', svg):
        column = round(float(x) / 12.2) - 1  # the export has a one-cell margin
        text = html.unescape(text).replace("\xa0", " ").rstrip("\n")
        row = rows.get(int(line), "")
        row = row.ljust(column) if cell_len(row) < column else row
        rows[int(line)] = row + text
    return [rows[i].rstrip() for i in sorted(rows)]
