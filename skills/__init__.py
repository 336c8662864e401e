"""Pluggable skills: the Skill protocol, the ``@skill`` decorator, discovery through the
``llmos.skills`` entry-point group, and the built-ins (``qa``, ``summarize``, ``code``,
``help``). Heavy parts (the sandbox, evaluations) load on first use.
"""

from __future__ import annotations

from skills.base import Skill, SkillRequest
from skills.config import CodeConfig, QAConfig, SandboxConfig, SkillsConfig, SummarizeConfig, for_http
from skills.decorator import FunctionSkill, skill
from skills.registry import GROUP, Discovery, SkillFailure, discover_skills, load_skills

__all__ = [
    "GROUP",
    "CodeConfig",
    "Discovery",
    "FunctionSkill",
    "QAConfig",
    "SandboxConfig",
    "Skill",
    "SkillFailure",
    "SkillRequest",
    "SkillsConfig",
    "SummarizeConfig",
    "discover_skills",
    "for_http",
    "load_skills",
    "skill",
]
