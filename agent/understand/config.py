"""Configuration of intent and sentiment understanding (the ``understanding:`` section).

Example, for a support bot that adds an intent and sends it to a skill::

    understanding:
      intent_examples:
        refund_request: ["I want my money back", "how do I get a refund", ...]
      drop_intents: [code_request]
      routes: {refund_request: refunds}
      frustration_threshold: 0.5
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["UnderstandConfig", "DEFAULT_ROUTES", "HANDOFF_INTENT", "OOS_LABEL"]

HANDOFF_INTENT = "human_request"
OOS_LABEL = "out_of_scope"

DEFAULT_ROUTES: dict[str, str] = {
    "code_request": "code",
    "summarize_request": "summarize",
    "question": "qa",
}


class UnderstandConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Classify intent and sentiment on every turn (needs the embedder)."""

    intents_model: str | None = None
    """A folder written by `llmos train intents`; default: the shipped routing intents."""
    intent_examples: dict[str, list[str]] = Field(default_factory=dict)
    """Extra examples per intent, added to the shipped ones; a new name adds an intent. When
    set, the intent head is retrained at start-up (a few seconds for a few hundred examples)."""
    drop_intents: list[str] = Field(default_factory=list)
    """Shipped intents to remove (their examples become out-of-scope, not another intent)."""
    replace_default_intents: bool = False
    """Train only on `intent_examples`, without the shipped examples."""
    oos_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Below this confidence an intent is reported as out-of-scope; default: the threshold
    calibrated when the head was trained (stored with it)."""
    oos_label: str = OOS_LABEL
    """The label reported for out-of-scope text."""

    sentiment_model: str | None = None
    """A folder written by `llmos train sentiment`; default: the shipped SST-2 head."""
    neutral_band: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Signed sentiment scores in (-band, +band) are labelled neutral: the head is unsure.
    Such turns count as 0 in the frustration average. (Plain questions are neutral by the
    shipped model's own neutral class; 0.1 keeps at most 2 % of clearly polar sentences
    neutral on the tuning data, where 0.35 kept 6 %.)"""

    frustration_decay: float = Field(default=0.6, gt=0.0, le=1.0)
    """Weight of each older user turn relative to the next one in the frustration average
    (1.0: a plain mean of the session; smaller: recent turns dominate)."""
    frustration_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    """Hand off to a human when frustration (0..1) reaches this; 1.0 effectively disables it."""
    frustration_min_turns: int = Field(default=2, ge=1)
    """User turns (this one included) before frustration alone may trigger a handoff, so a
    single blunt message does not escalate (unless it reaches `frustration_strong`)."""
    frustration_strong: float | None = Field(default=None, gt=0.0, le=1.0)
    """Hand off at once, even on the first turn, when frustration reaches this (one strongly
    negative message; on the first turn frustration is that turn's negative score). Off by
    default: the shipped sentiment score is a confidence, not an intensity, so a mild remark
    scores like a furious one ("the app is a bit slow today" -0.998) and 0.9 would hand off
    62 of the 541 IFEval prompts on their first turn. Set it with a head whose scores track
    intensity, or when any clearly negative first message should reach a human."""

    handoff_intent: str = HANDOFF_INTENT
    """The intent that asks for a human; it sets `Reply.handoff`."""
    handoff_min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    """Confidence the handoff intent needs before it triggers a handoff."""

    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    """Intent -> skill name. Slash commands win over these; unmatched intents go to chat."""
    knowledge_skills: list[str] = Field(default_factory=lambda: ["qa"])
    """Skills that are routed to by intent only when a knowledge base exists."""
    min_route_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    """An intent routes to its skill only at or above this confidence."""

    @model_validator(mode="after")
    def _check(self) -> UnderstandConfig:
        for name, examples in self.intent_examples.items():
            if not name.strip():
                raise ValueError("intent_examples has an empty intent name")
            if not any(str(e).strip() for e in examples):
                raise ValueError(f"intent_examples.{name} has no examples: give a few sentences or remove it")
        if self.replace_default_intents and len(self.intent_examples) < 2:
            raise ValueError("replace_default_intents needs intent_examples for at least two intents")
        return self
