"""Which skill an intent asks for, and whether a turn should go to a human.

The dialogue manager applies the order DESIGN.md gives: a slash command wins, then the
intent -> skill map from config, then plain chat. These functions hold the parts that
depend on the understanding config, so the manager and the tests share one definition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from agent.turn import Label
from agent.understand.config import UnderstandConfig

__all__ = ["route_for", "handoff_reason", "skill_accepts", "asks_to_summarize", "looks_like_question", "choose_skill",
           "worth_remembering", "REQUEST_INTENTS", "TASK_INTENTS"]

REQUEST_INTENTS = frozenset({"question", "explain", "code_request", "summarize_request", "writing_request",
                             "greeting", "goodbye", "thanks", "human_request"})
"""Intents of turns that ask for something rather than tell something."""

TASK_INTENTS = frozenset({"question", "explain", "code_request", "summarize_request"})
"""The intents the head reads reliably on any text (it calls narrative ``writing_request`` or
``thanks`` too often to veto memories with those): a turn with one is not stored."""

_REQUEST_START = re.compile(
    r"^\W*(?:please\s+|pls\s+|now\s+|so\s+)?(?:write|rewrite|re-write|summari[sz]e|explain|tell me|tell us|give me|"
    r"give us|list|translate|create|make|generate|draft|compose|describe|show me|help me|find|suggest|recommend|"
    r"imagine|pretend|act as|answer|fix|debug|implement|convert|calculate|can you|could you|would you|will you|"
    r"let's|lets|do not|don't use|provide|produce|name|identify|compare|analy[sz]e|plan|design|outline|elaborate|"
    r"edit|improve|expand|respond|reply|use)\b", re.IGNORECASE)
_WANT_YOU = re.compile(r"\b(?:i|we)\s+(?:want|would like|'d like|need|wish)\s+(?:you|thee|a|an|the|"
                       r"to\s+(?:know|see|get|have|read|hear))\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|im|my|me|mine|myself|we|we're|we've|our|ours|us)\b",
                           re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

# "Summarize this dialogue:", "Can you give me a short summary of the chat below?", "TL;DR:",
# "Summarize the conversation above." -- a line that *is* the request, not "write a summary
# of <something not given>" (a writing request, which chat answers).
_SUMMARY_LINE = re.compile(
    r"^\W*(please\s+|can\s+you\s+|could\s+you\s+|would\s+you\s+)?"
    r"(summari[sz]e|sum\s+up|recap|tl;?\s?dr|give\s+me\s+(a\s+|the\s+)?(short\s+|brief\s+|quick\s+)?(summary|gist|recap|tl;?dr)"
    r"|what\s+(did|do)\s+they\s+(agree|decide|say))\b",
    re.IGNORECASE)


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


def asks_to_summarize(text: str) -> bool:
    """Whether the message is a summarize request with the text to summarize attached: its
    first or last line (short) asks for a summary and other lines follow or precede it.

    The intent head reads one embedding of the whole message, which a pasted dialogue or
    article dominates; the request line decides here instead (DialogSum dialogues behind a
    request were routed to chat 61% of the time by the head alone)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    return any(len(line.split()) <= 25 and _SUMMARY_LINE.search(line.strip()) for line in (lines[0], lines[-1]))


def skill_accepts(skill: Any, text: str, *, count_tokens: Callable[[str], int], **context: Any) -> bool:
    """Whether an intent-routed ``skill`` has something to work on in ``text`` (its optional
    ``accepts(text, count_tokens=..., memory=..., user_id=..., vector=...)``; a skill without
    one takes every routed turn). A summarizer asked to "write a summary of a famous speech"
    has no text to summarize, a QA skill whose documents say nothing about the question has
    no answer: chat answers those. Slash commands skip this check."""
    accepts = getattr(skill, "accepts", None)
    if not callable(accepts):
        return True
    try:
        return bool(accepts(text, count_tokens=count_tokens, **context))
    except Exception:  # a broken check must not break the turn: let the skill decide
        return True


_QUESTION_START = re.compile(r"^\W*(who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|can|could"
                             r"|should|would|will|has|have|had|in\s+what|in\s+which|to\s+what|to\s+whom|to\s+where)\b",
                             re.IGNORECASE)


def looks_like_question(text: str) -> bool:
    """A one-line question ("Who did Alexander I marry?"): where a knowledge base exists,
    the QA skill gets to check whether its documents answer it, whatever the intent head
    made of the wording."""
    clean = text.strip()
    return "\n" not in clean and len(clean.split()) <= 40 and (clean.endswith("?") or bool(_QUESTION_START.match(clean)))


def worth_remembering(text: str, intent: Label | None) -> bool:
    """Whether a user turn tells something worth recalling later (a fact, a preference, a
    plan: "I live in Lyon", "my order 4417 arrived broken", "I want to apply at Google")
    rather than only asks for something (a question, a request to write, code or summarize,
    a courtesy): stored requests were recalled into unrelated later turns and the small model
    answered them instead.

    Decided sentence by sentence, not by the intent head alone: on conversations between
    people (LoCoMo) the head calls most narrative turns ``writing_request``, ``thanks`` or
    ``small_talk``, and trusting it kept 564 of 2,760 turns (evidence recall@10 0.814 ->
    0.208). A turn is kept when one of its sentences tells something about the speaker (a
    first-person statement of three words or more that is not a question or a request), and
    its first sentence does not make the whole message a task ("Write ...", "Can you ...",
    "I want you to ..."). The head still vetoes what it reads reliably: questions,
    explanations, code and summary requests (``TASK_INTENTS``)."""
    if intent is not None and intent.label in TASK_INTENTS and intent.score >= 0.5:
        return False
    if asks_to_summarize(text):
        return False
    sentences = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    if not sentences or _is_request(sentences[0]):
        return False
    return any(_tells(s) for s in sentences)


def _is_request(sentence: str) -> bool:
    return bool(_REQUEST_START.match(sentence) or _WANT_YOU.search(sentence))


def _tells(sentence: str) -> bool:
    return (len(sentence.split()) >= 3 and not sentence.endswith("?") and not _is_request(sentence)
            and bool(_FIRST_PERSON.search(sentence)))


def choose_skill(text: str, intent: Label | None, config: UnderstandConfig, skills: dict[str, Any], *,
                 has_knowledge_base: bool, count_tokens: Callable[[str], int], **context: Any) -> str | None:
    """The skill an (unprefixed) turn goes to, or None for chat, in this order:

    1. a summarize request with its text attached (:func:`asks_to_summarize`);
    2. the intent -> skill map (:func:`route_for`), if the skill accepts the turn;
    3. with a knowledge base, a plain question the QA skill finds passages for (also when
       the intent pointed at a skill that refused the turn).

    ``context`` (memory, user_id, vector) reaches the skills' ``accepts``."""
    if "summarize" in skills and asks_to_summarize(text) and skill_accepts(
            skills["summarize"], text, count_tokens=count_tokens, **context):
        return "summarize"
    routed = route_for(intent, config, available_skills=skills, has_knowledge_base=has_knowledge_base)
    if routed is not None and skill_accepts(skills[routed], text, count_tokens=count_tokens, **context):
        return routed
    qa = next((name for name in config.knowledge_skills if name in skills), None)
    if (qa is not None and routed != qa and has_knowledge_base and looks_like_question(text)
            and skill_accepts(skills[qa], text, count_tokens=count_tokens, **context)):
        return qa  # e.g. a question the intent head took for a summarize request
    return None


def handoff_reason(intent: Label | None, frustration: float | None, user_turns: int,
                   config: UnderstandConfig) -> str | None:
    """Why this turn should go to a human (``"intent"``, ``"strong_frustration"`` or
    ``"frustration"``), or None.

    ``user_turns`` counts the session's user turns including this one. Frustration at or
    above ``frustration_strong`` escalates at once, even on the first turn (one furious
    message); below it, frustration escalates from ``frustration_threshold`` but only after
    ``frustration_min_turns`` turns (sustained annoyance, not one blunt message).
    """
    if (intent is not None and intent.label == config.handoff_intent
            and intent.score >= config.handoff_min_confidence):
        return "intent"
    if frustration is None:
        return None
    if config.frustration_strong is not None and frustration >= config.frustration_strong:
        return "strong_frustration"
    if frustration >= config.frustration_threshold and user_turns >= config.frustration_min_turns:
        return "frustration"
    return None
