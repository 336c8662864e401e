"""Copy text to the clipboard: the terminal's OSC 52 (works over SSH) and, where there is a
desktop, the system's clipboard tool too (many terminals ignore OSC 52)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from textual.app import App

__all__ = ["copy_text"]


def _system_tool() -> list[str] | None:
    if sys.platform == "darwin":
        candidates = [["pbcopy"]]
    elif os.environ.get("WAYLAND_DISPLAY"):
        candidates = [["wl-copy"]]
    elif os.environ.get("DISPLAY"):
        candidates = [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    elif sys.platform == "win32" or "microsoft" in os.uname().release.lower():
        candidates = [["clip.exe"]]
    else:
        return None
    return next((c for c in candidates if shutil.which(c[0])), None)


def copy_text(app: App[object], text: str) -> None:
    """Put ``text`` on the clipboard (``app.clipboard`` holds it for tests)."""
    app.copy_to_clipboard(text)
    tool = _system_tool()
    if tool is None:
        return
    try:
        subprocess.run(tool, input=text.encode("utf-8"), timeout=2, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass  # OSC 52 was sent already; a missing or hung tool is not an error worth showing
