"""Configuration of the memory store (the ``memory:`` section of an agent config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MemoryConfig"]


class MemoryConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Remember what users say and recall it in later turns and sessions."""
    embedder: str = "all-minilm-l6-v2"
    """The sentence embedder: the shipped default, a model folder or a cached HF id."""
    k: int = Field(5, ge=1, le=100)
    """How many memories to recall per turn (before the token budget)."""
    token_budget: int = Field(384, ge=0)
    """Most prompt tokens spent on recalled text per turn."""
