"""Slash commands and key bindings: one table each, shared by completion and the help screen.

``/qa``, ``/summarize`` and ``/code`` go to the agent as ordinary text (the agent routes
them to its skills); the others are handled by the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SlashCommand", "COMMANDS", "KEYS", "parse", "matches", "complete"]


@dataclass(frozen=True)
class SlashCommand:
    name: str
    args: str
    help: str
    ui: bool
    """True: the UI handles it; False: the text is sent to the agent."""


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("/qa", "QUESTION", "answer from the knowledge base", ui=False),
    SlashCommand("/summarize", "TEXT", "summarize text", ui=False),
    SlashCommand("/code", "TASK", "write code", ui=False),
    SlashCommand("/help", "", "keys and commands", ui=True),
    SlashCommand("/new", "[TITLE]", "start a new session", ui=True),
    SlashCommand("/memory", "", "show and delete what the agent remembers", ui=True),
    SlashCommand("/forget", "[ID...]", "forget memories (all of yours without ids)", ui=True),
    SlashCommand("/export", "[FILE]", "export this session to Markdown", ui=True),
    SlashCommand("/model", "", "show the model and the agent config", ui=True),
    SlashCommand("/attach", "[PATH]", "attach a file (knowledge base or message)", ui=True),
)

_BY_NAME = {command.name: command for command in COMMANDS}

KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message"),
    ("Shift+Enter, Ctrl+J", "new line in the message"),
    ("Up / Down", "message history (from the first / last line)"),
    ("Tab", "complete a /command (else: next widget)"),
    ("Escape", "stop the reply being generated"),
    ("PgUp / PgDn", "scroll the conversation (at the end it follows again)"),
    ("Ctrl+B", "show / hide the sessions sidebar"),
    ("Ctrl+T", "show / hide the insight panel"),
    ("Ctrl+N", "new session"),
    ("Ctrl+O", "attach a file"),
    ("Ctrl+S", "export the session to Markdown"),
    ("Ctrl+R", "copy the last reply"),
    ("c / b", "on a message: copy it / copy its next code block"),
    ("n r d Enter Esc", "in the sidebar: new, rename, delete, open, back"),
    ("Ctrl+C", "copy the mouse selection"),
    ("Ctrl+P", "command palette (themes)"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)


def parse(text: str) -> tuple[SlashCommand, str] | None:
    """The UI command in ``text`` and its argument, or None (send the text to the agent)."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    name, _, rest = stripped.partition(" ")
    command = _BY_NAME.get(name.lower())
    if command is None or not command.ui:
        return None
    return command, rest.strip()


def matches(prefix: str) -> list[SlashCommand]:
    """Commands that start with ``prefix`` (a ``/word`` without a space yet)."""
    if not prefix.startswith("/") or " " in prefix or "\n" in prefix:
        return []
    return [command for command in COMMANDS if command.name.startswith(prefix.lower())]


def complete(prefix: str) -> str:
    """The longest completion of ``prefix``: the one match plus a space, or the common prefix."""
    found = [command.name for command in matches(prefix)]
    if len(found) == 1:
        return found[0] + " "
    if not found:
        return prefix
    common = found[0]
    for name in found[1:]:
        while not name.startswith(common):
            common = common[:-1]
    return common if len(common) > len(prefix) else prefix
