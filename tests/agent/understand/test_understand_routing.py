"""Frustration decay, handoff decisions, the intent -> skill map, and the config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.turn import Label
from agent.understand import DEFAULT_ROUTES, UnderstandConfig, frustration_level, handoff_reason, route_for
from agent.understand.frustration import polarity_beyond_band


def test_frustration_is_a_decaying_average_of_negativity() -> None:
    assert frustration_level([]) == 0.0
    assert frustration_level([0.8, 0.9]) == 0.0  # happy users are not frustrated
    assert frustration_level([-1.0]) == pytest.approx(1.0)
    # newest weight 1, previous 0.5: (-1*1 + 0*0.5) / 1.5
    assert frustration_level([0.0, -1.0], decay=0.5) == pytest.approx(1 / 1.5)
    assert frustration_level([-1.0, 0.0], decay=0.5) == pytest.approx(0.5 / 1.5)
    # decay 1.0 is the plain mean
    assert frustration_level([-0.6, -0.2, 0.2], decay=1.0) == pytest.approx(0.2)
    # sustained anger rises, calming down falls
    angry = frustration_level([-0.9, -0.9, -0.9])
    assert angry > frustration_level([0.5, 0.5, -0.9]) > 0
    assert frustration_level([-0.9, -0.9, 0.8, 0.8]) < angry
    with pytest.raises(ValueError):
        frustration_level([0.1], decay=0.0)


def test_neutral_turns_count_as_zero_in_frustration() -> None:
    # One angry turn, then a plain question the head scores mildly negative (-0.3, inside the
    # band, so labelled neutral): the question dilutes the anger instead of adding to it.
    angry_then_question = frustration_level([-0.9, -0.3], decay=0.6, neutral_band=0.35)
    assert angry_then_question == pytest.approx(0.6 * 0.9 / 1.6)
    assert angry_then_question < 0.5 < frustration_level([-0.9, -0.3], decay=0.6)
    # Turns labelled negative or positive keep their full score.
    assert frustration_level([-0.55, -0.55], neutral_band=0.35) == pytest.approx(0.55)
    assert frustration_level([-0.34], neutral_band=0.35) == 0.0
    assert polarity_beyond_band(0.675, 0.35) == 0.675
    assert polarity_beyond_band(-2.0, 0.35) == -1.0
    with pytest.raises(ValueError, match="neutral_band"):
        frustration_level([0.1], neutral_band=1.0)


def test_handoff_on_intent_or_sustained_frustration() -> None:
    cfg = UnderstandConfig(frustration_threshold=0.5, frustration_min_turns=2)
    human = Label(label="human_request", score=0.9)
    assert handoff_reason(human, 0.0, 1, cfg) == "intent"
    assert handoff_reason(Label(label="human_request", score=0.3), 0.0, 1, cfg) is None  # not sure enough
    assert handoff_reason(Label(label="greeting", score=0.9), 0.85, 1, cfg) is None  # one blunt message
    assert handoff_reason(Label(label="complaint", score=0.9), 0.6, 2, cfg) == "frustration"
    assert handoff_reason(None, 0.4, 5, cfg) is None
    custom = UnderstandConfig(handoff_intent="agent_please", frustration_min_turns=1)
    assert handoff_reason(Label(label="agent_please", score=0.8), None, 1, custom) == "intent"
    assert handoff_reason(None, 0.7, 1, custom) == "frustration"


def test_routes_default_and_knowledge_base_gate() -> None:
    cfg = UnderstandConfig()
    assert cfg.routes == DEFAULT_ROUTES
    assert route_for(Label(label="code_request", score=0.9), cfg) == "code"
    assert route_for(Label(label="summarize_request", score=0.9), cfg) == "summarize"
    assert route_for(Label(label="question", score=0.9), cfg) is None  # QA needs a knowledge base
    assert route_for(Label(label="question", score=0.9), cfg, has_knowledge_base=True) == "qa"
    assert route_for(Label(label="greeting", score=0.9), cfg) is None
    assert route_for(Label(label="out_of_scope", score=0.9), cfg) is None
    assert route_for(None, cfg) is None


def test_slash_command_wins_and_missing_skills_fall_back_to_chat() -> None:
    cfg = UnderstandConfig(min_route_confidence=0.5)
    code = Label(label="code_request", score=0.9)
    assert route_for(code, cfg, slash_skill="summarize") == "summarize"
    assert route_for(code, cfg, available_skills={"qa"}) is None
    assert route_for(Label(label="code_request", score=0.4), cfg) is None


def test_config_overrides_routes_and_validates() -> None:
    cfg = UnderstandConfig(routes={"refund_request": "refunds"}, knowledge_skills=[])
    assert route_for(Label(label="refund_request", score=0.7), cfg) == "refunds"
    assert route_for(Label(label="code_request", score=0.9), cfg) is None
    with pytest.raises(ValidationError, match="extra"):
        UnderstandConfig(threshhold=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="has no examples"):
        UnderstandConfig(intent_examples={"refund": ["  "]})
    with pytest.raises(ValidationError, match="at least two intents"):
        UnderstandConfig(replace_default_intents=True, intent_examples={"refund": ["money back"]})
    with pytest.raises(ValidationError):
        UnderstandConfig(oos_threshold=1.5)
    with pytest.raises(ValidationError):
        UnderstandConfig().enabled = False  # frozen
