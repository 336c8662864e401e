"""The built-in ``/help`` skill: lists the loaded skills and any plugin that failed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from skills.base import Skill, SkillRequest

__all__ = ["HelpSkill", "describe_skills"]


def describe_skills(skills: Mapping[str, Skill], failures: Sequence[Any] = ()) -> str:
    """Markdown listing of skills (slash command, description, intents) and failed plugins."""
    lines = ["Skills (use a slash command, or just ask):", ""]
    for name, sk in sorted(skills.items()):
        command = f"/{sk.command}" if sk.command else f"({name})"
        intents = f" _(intents: {', '.join(sk.intents)})_" if sk.intents else ""
        lines.append(f"- `{command}` {sk.description}{intents}")
    if not skills:
        lines.append("- none loaded: every message goes to plain chat")
    if failures:
        lines += ["", "Plugins that failed to load (see the log):"]
        lines += [f"- {f.name} ({f.target}): {f.error}" for f in failures]
    return "\n".join(lines)


class HelpSkill:
    """Lists what the agent can do. Discovery hands it the loaded skills (``attach_catalog``)."""

    name = "help"
    description = "List the skills and their slash commands."
    intents: tuple[str, ...] = ()
    command: str | None = "help"

    def __init__(self, catalog: Mapping[str, Skill] | None = None) -> None:
        self._catalog: Mapping[str, Skill] = catalog if catalog is not None else {}
        self._failures: Sequence[Any] = ()

    def attach_catalog(self, catalog: Mapping[str, Skill], failures: Sequence[Any] = ()) -> None:
        self._catalog = catalog
        self._failures = failures

    def run(self, request: SkillRequest) -> Iterator[str]:
        yield describe_skills(self._catalog, self._failures)
