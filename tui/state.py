"""What the app remembers between runs: the session each user had open.

A small JSON file in the agent's data directory (``{"last_session": {user_id: session_id}}``),
written atomically; a missing or damaged file just means "start with a new chat".
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.files import atomic_write

__all__ = ["LastSession", "STATE_FILE"]

STATE_FILE = "tui-state.json"
"""The file's name in the data directory."""


class LastSession:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        sessions = data.get("last_session") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            return {}
        return {str(user): str(session) for user, session in sessions.items() if isinstance(session, str)}

    def get(self, user_id: str) -> str | None:
        """The session ``user_id`` had open last, or None."""
        return self._read().get(user_id)

    def set(self, user_id: str, session_id: str | None) -> None:
        """Remember the open session (None: a new chat, not stored yet). Never raises: losing
        this is a small thing next to stopping the chat."""
        sessions = self._read()
        if sessions.get(user_id) == session_id:
            return
        if session_id is None:
            sessions.pop(user_id, None)
        else:
            sessions[user_id] = session_id
        try:
            atomic_write(self.path, json.dumps({"last_session": sessions}))
        except OSError:
            return
