"""The model library: presets, loading (offline), device placement, generation."""

from __future__ import annotations

from agent.models.presets import DEFAULT_MODEL, PRESETS, Preset

__all__ = ["DEFAULT_MODEL", "PRESETS", "Preset"]
