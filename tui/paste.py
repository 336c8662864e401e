"""Bracketed pastes arrive whole and in order, escape bytes included.

Textual's input parser (textual 8.2) reads an ESC inside a bracketed paste as the start of a
key sequence: the bytes from that ESC on are sent as *key presses* right away (ESC becomes
``^``), and only the text before the first ESC reaches the ``Paste`` event, which comes last.
Pasting ``AAA BBB <ESC>[31mCCC`` typed ``^[31mCCC`` and then inserted ``AAA BBB`` after it.

:class:`PasteParser` wraps that parser: once the paste-start marker has gone through, it
reads everything up to the paste-end marker itself and posts it as one ``Paste`` event; the
widgets then neutralize the control characters (tui.sanitize). :func:`paste_safe_driver` is
the Linux driver with this parser (``ChatApp.get_driver_class`` picks it).
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Generator
from functools import cache
from typing import Any

from textual import events
from textual._parser import ParseEOF, ParseError, ParseTimeout, Peek1, Read1, TokenCallback
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.driver import Driver

__all__ = ["PasteParser", "paste_safe_driver"]


class PasteParser(XTermParser):
    """Textual's xterm parser, with bracketed pastes read verbatim (see the module docstring)."""

    def parse(self, token_callback: TokenCallback) -> Generator[Read1 | Peek1, str, None]:
        def keys_and_events(token: Any) -> None:
            # Pastes are reported below; Textual's own (a truncated one, or an empty one
            # after the end marker we hand it) are dropped.
            if not isinstance(token, events.Paste):
                token_callback(token)

        inner = super().parse(keys_and_events)
        request = next(inner)
        recent = ""
        while True:
            try:
                character = yield request
            except (ParseTimeout, ParseEOF) as error:
                recent = ""  # a marker split by a timeout is not one for Textual either
                try:
                    request = inner.throw(error)
                except StopIteration:
                    return
                continue
            try:
                request = inner.send(character)
            except StopIteration:
                return
            recent = (recent + character)[-len(BRACKETED_PASTE_START):]
            if recent != BRACKETED_PASTE_START:
                continue
            recent = ""
            text = ""
            while not text.endswith(BRACKETED_PASTE_END):
                try:
                    text += yield self.read1()
                except ParseEOF:
                    token_callback(events.Paste(text.replace("\x00", "")))
                    return
            token_callback(events.Paste(text[: -len(BRACKETED_PASTE_END)].replace("\x00", "")))
            # Textual's parser is inside a paste since the start marker: end it there too.
            for character in BRACKETED_PASTE_END:
                try:
                    request = inner.send(character)
                except StopIteration:
                    return


def paste_safe_driver(driver_class: type[Driver]) -> type[Driver]:
    """``driver_class`` with :class:`PasteParser` when it is Textual's Linux driver (the one
    that parses the terminal's bytes on Linux and macOS), else ``driver_class`` unchanged."""
    if driver_class.__module__ != "textual.drivers.linux_driver" or driver_class.__name__ != "LinuxDriver":
        return driver_class
    return _paste_safe_linux_driver(driver_class)


@cache
def _paste_safe_linux_driver(linux_driver: type[Driver]) -> type[Driver]:
    # Built on first use: the Linux driver imports termios, which Windows lacks.
    return type("PasteSafeLinuxDriver", (linux_driver,), {"run_input_thread": _run_input_thread})


def _run_input_thread(self: Any) -> None:
    """LinuxDriver.run_input_thread (textual 8.2.8, pinned) with PasteParser instead of
    XTermParser; the loop is otherwise the same."""
    selector = selectors.SelectSelector()
    selector.register(self.fileno, selectors.EVENT_READ)
    fileno = self.fileno
    parser = PasteParser(self._debug)
    decode = getincrementaldecoder("utf-8")().decode

    def process(selector_events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
        for index, (_key, mask) in enumerate(selector_events):
            if mask & selectors.EVENT_READ:
                last = index == len(selector_events) - 1
                data = decode(os.read(fileno, 1024 * 4), final=final and last)
                if not data:
                    break
                for event in parser.feed(data):
                    self.process_message(event)
        for event in parser.tick():
            self.process_message(event)

    try:
        while not self.exit_event.is_set():
            process(selector.select(0.1))
        selector.unregister(self.fileno)
        process(selector.select(0.1), final=True)
    finally:
        selector.close()
        try:
            for _event in parser.feed(""):
                pass
        except (EOFError, ParseError):
            pass
