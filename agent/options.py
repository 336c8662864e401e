"""Sampling options for one generation, validated once at the edge."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["GenerationOptions", "with_overrides", "SEED_MIN", "SEED_MAX", "GREEDY_BELOW"]

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
"""Seeds are 64-bit signed integers, as OpenAI's API documents them; torch's generators take
every one of them (2**80 raised "Overflow when unpacking long long" inside the sampler)."""
GREEDY_BELOW = 1e-5
"""A temperature below this samples greedily: dividing the logits by 1e-40 makes them inf,
and the softmax of inf is NaN (vLLM draws the same line)."""


class GenerationOptions(BaseModel):
    """How to sample a reply. ``temperature=0`` (or below :data:`GREEDY_BELOW`) means greedy decoding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    """Softmax temperature; 0 picks the most likely token every time."""
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p."""
    top_k: int = Field(50, ge=0)
    """Keep only the k most likely tokens (0 turns the filter off)."""
    repetition_penalty: float = Field(1.1, ge=1.0, le=3.0)
    """Divide the logits of tokens already in the context by this (1.0 = off)."""
    max_new_tokens: int = Field(256, ge=1, le=32768)
    """Upper bound on generated tokens."""
    stop: tuple[str, ...] = ()
    """Stop generating when any of these strings appears; it is not part of the reply."""
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    """Seed for the sampler, for reproducible replies (a 64-bit signed integer)."""

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: object) -> object:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(value)
        return value

    @field_validator("stop")
    @classmethod
    def _stop_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(s == "" for s in value):
            raise ValueError("stop strings must not be empty; remove the empty string")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


def with_overrides(base: GenerationOptions, overrides: dict[str, Any]) -> GenerationOptions:
    """``base`` with ``overrides`` applied and validated; a bad value raises ValueError
    naming each field and its problem (callers turn it into their own error)."""
    if not overrides:
        return base
    try:
        return GenerationOptions.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
