"""CLI commands of the toolbox part (filled in by its issue)."""

from __future__ import annotations

from typing import Any


def register(groups: Any) -> None:
    """Add this module's commands to the parser groups."""
