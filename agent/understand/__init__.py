"""Intent and sentiment classifiers on the turn's embedding."""

from __future__ import annotations

from agent.understand.config import UnderstandConfig

__all__ = ["UnderstandConfig"]
