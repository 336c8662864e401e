"""Configuration of skills (the ``skills:`` section of an agent config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["SkillsConfig"]


class SkillsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: tuple[str, ...] | None = None
    """Skill names to load (None: every installed skill, built-ins and plugins)."""
