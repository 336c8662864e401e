"""Pluggable skills: the Skill protocol and the request a skill receives."""

from __future__ import annotations

from skills.base import Skill, SkillRequest
from skills.config import SkillsConfig

__all__ = ["Skill", "SkillRequest", "SkillsConfig"]
