"""Configuration of intent and sentiment understanding (the ``understanding:`` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["UnderstandConfig"]


class UnderstandConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Classify intent and sentiment on every turn (needs the embedder)."""
