"""Keep log records off the screen while the app runs.

``llmos chat`` configures logging to the terminal (``logging.basicConfig``); a record written
there while the full-screen UI runs lands on top of it: a failing skill's traceback (say, when
the model server goes away) would be drawn over the conversation. While the app runs, the
handlers that write to a terminal are taken off the root logger, and the records go to a log
file instead (when the app has one); they are put back when the app ends.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["OffScreenLogs"]


def _writes_to_terminal(handler: logging.Handler) -> bool:
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    try:
        return bool(handler.stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class OffScreenLogs:
    """``start()`` moves the root logger's terminal handlers aside (and opens ``path``, if
    given, for the records); ``stop()`` puts everything back."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._moved: list[logging.Handler] = []
        self._file: logging.Handler | None = None

    def start(self) -> None:
        root = logging.getLogger()
        self._moved = [handler for handler in root.handlers if _writes_to_terminal(handler)]
        for handler in self._moved:
            root.removeHandler(handler)
        if self.path is not None and self._moved:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(self.path, encoding="utf-8", delay=True)
            except OSError:
                return  # no log file then; the screen stays clean all the same
            handler.setLevel(min(h.level for h in self._moved))
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)
            self._file = handler

    def stop(self) -> None:
        root = logging.getLogger()
        if self._file is not None:
            root.removeHandler(self._file)
            self._file.close()
            self._file = None
        for handler in self._moved:
            if handler not in root.handlers:
                root.addHandler(handler)
        self._moved = []
