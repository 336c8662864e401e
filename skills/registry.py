"""Skill discovery: entry points in the ``llmos.skills`` group, built-ins included.

A package adds skills in its ``pyproject.toml``::

    [project.entry-points."llmos.skills"]
    order_status = "order_status_skill:order_status"

The entry point names a :class:`~skills.base.Skill` object, or a factory (a class or a
function) called with the :class:`~skills.config.SkillsConfig` (or with nothing). A plugin
that fails to import, to build, or is not a skill is logged and skipped, never fatal; the
failure is kept so ``/help`` and ``llmos skills`` can show it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from skills.base import Skill
from skills.config import SkillsConfig, for_http

__all__ = ["GROUP", "BUILTINS", "Discovery", "SkillFailure", "discover_skills", "load_skills"]

log = logging.getLogger(__name__)

GROUP = "llmos.skills"

BUILTINS: dict[str, str] = {
    "qa": "skills.qa.skill:QASkill",
    "summarize": "skills.summarize.skill:SummarizeSkill",
    "code": "skills.code.skill:CodeSkill",
    "help": "skills.builtin_help:HelpSkill",
}
"""The built-in skills, as llmos's own pyproject declares them. Used directly only when the
installed metadata lacks them (a source tree that was not ``pip install``-ed again)."""


@dataclass(frozen=True)
class SkillFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    target: str
    error: str


@dataclass
class Discovery:
    """The outcome of discovery: loaded skills by name, and the plugins that failed."""

    skills: dict[str, Skill] = field(default_factory=dict)
    failures: list[SkillFailure] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    """Skill name -> distribution that provided it (``llmos`` for built-ins)."""


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    # The same distribution can be on sys.path twice (an editable install and a build dir).
    found = list({(ep.name, ep.value): ep for ep in metadata.entry_points(group=group)}.values())
    have = {ep.name for ep in found if ep.value in BUILTINS.values()}
    missing = [n for n in BUILTINS if n not in have]
    if missing and group == GROUP:
        log.debug("built-in skills %s not in the installed metadata; loading them directly", missing)
        found += [metadata.EntryPoint(name=n, value=BUILTINS[n], group=group) for n in missing]

    def rank(ep: metadata.EntryPoint) -> tuple[int, str]:
        # Built-ins first, so a plugin cannot silently replace /qa or /help.
        return (0 if ep.value in BUILTINS.values() else 1, ep.name)

    return sorted(found, key=rank)


def _distribution(ep: metadata.EntryPoint) -> str:
    if ep.value in BUILTINS.values():
        return "llmos"
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", None) or "unknown")


def _build(obj: Any, config: SkillsConfig) -> Any:
    if isinstance(obj, Skill) and not inspect.isclass(obj):
        return obj
    if not callable(obj):
        return obj
    # A factory that takes a positional argument gets the skills config; others get nothing.
    params = [p for p in inspect.signature(obj).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return obj(config) if params else obj()


def discover_skills(config: SkillsConfig | None = None, *, group: str = GROUP,
                    entry_points: Iterable[metadata.EntryPoint] | None = None) -> Discovery:
    """Load every installed skill (or those ``config.enabled`` names), keeping failures."""
    config = config or SkillsConfig()
    wanted = set(config.enabled) if config.enabled is not None else None
    out = Discovery()
    for ep in (list(entry_points) if entry_points is not None else _entry_points(group)):
        if wanted is not None and ep.name not in wanted:
            continue  # not enabled: do not even import it
        try:
            built = _build(ep.load(), config)
        except Exception as exc:  # a broken plugin is skipped, never fatal
            log.warning("skill plugin %r (%s) failed to load and is skipped: %s", ep.name, ep.value, exc)
            out.failures.append(SkillFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
            continue
        if not isinstance(built, Skill):
            error = (f"{ep.value} gave a {type(built).__name__}, not a skill (needs name, description, "
                     "intents, command and run(request))")
            log.warning("skill plugin %r skipped: %s", ep.name, error)
            out.failures.append(SkillFailure(ep.name, ep.value, error))
            continue
        if built.name in out.skills:
            log.warning("skill %r from %s is skipped: a skill of that name is already loaded from %s",
                        built.name, ep.value, out.origins[built.name])
            continue
        if built.name != ep.name:
            log.info("entry point %r provides the skill %r", ep.name, built.name)
        out.skills[built.name] = built
        out.origins[built.name] = _distribution(ep)
    if wanted is not None:
        absent = wanted - set(out.skills) - {f.name for f in out.failures}
        for name in sorted(absent):
            log.warning("skills.enabled names %r, which is not installed; installed skills: %s", name,
                        ", ".join(ep.name for ep in _entry_points(group)))
    _attach_catalog(out.skills, out.failures)
    return out


def _attach_catalog(skills: Mapping[str, Skill], failures: list[SkillFailure]) -> None:
    """Give skills that list others (``help``) the loaded mapping: no global registry."""
    for sk in skills.values():
        attach = getattr(sk, "attach_catalog", None)
        if callable(attach):
            attach(skills, failures)


def load_skills(config: SkillsConfig | None = None, *, http: bool = False) -> dict[str, Skill]:
    """The skills an agent uses: name -> skill, discovered through entry points.

    Broken plugins are logged and skipped; ``config.enabled`` filters by name. ``http=True``
    (the HTTP server) keeps code execution off unless the operator allowed it over HTTP.
    """
    config = config or SkillsConfig()
    return discover_skills(for_http(config) if http else config).skills
