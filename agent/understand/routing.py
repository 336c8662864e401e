"""Which skill an intent asks for, and whether a turn should go to a human.

The dialogue manager applies the order DESIGN.md gives: a slash command wins, then the
intent -> skill map from config, then plain chat. These functions hold the parts that
depend on the understanding config, so the manager and the tests share one definition.
"""

from __future__ import annotations

from collections.abc import Collection

from agent.turn import Label
from agent.understand.config import UnderstandConfig

__all__ = ["route_for", "handoff_reason"]


def route_for(intent: Label | None, config: UnderstandConfig, *, has_knowledge_base: bool = False,
              available_skills: Collection[str] | None = None, slash_skill: str | None = None) -> str | None:
    """The skill to run for this turn, or None for plain chat.

    ``slash_skill`` (from a ``/command``) wins over the intent. An intent routes only when
    it is in ``config.routes``, reaches ``min_route_confidence``, and its skill is
    installed (when ``available_skills`` is given); skills in ``knowledge_skills`` (QA)
    need a knowledge base, since answering "questions" from nothing is just chat.
    """
    if slash_skill:
        return slash_skill
    if intent is None or intent.label == config.oos_label:
        return None
    skill = config.routes.get(intent.label)
    if skill is None or intent.score < config.min_route_confidence:
        return None
    if skill in config.knowledge_skills and not has_knowledge_base:
        return None
    if available_skills is not None and skill not in available_skills:
        return None
    return skill


def handoff_reason(intent: Label | None, frustration: float | None, user_turns: int,
                   config: UnderstandConfig) -> str | None:
    """Why this turn should go to a human (``"intent"`` or ``"frustration"``), or None.

    ``user_turns`` counts the session's user turns including this one; frustration alone
    escalates only after ``frustration_min_turns`` of them.
    """
    if (intent is not None and intent.label == config.handoff_intent
            and intent.score >= config.handoff_min_confidence):
        return "intent"
    if (frustration is not None and frustration >= config.frustration_threshold
            and user_turns >= config.frustration_min_turns):
        return "frustration"
    return None
