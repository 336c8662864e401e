"""Lazy package attributes (PEP 562): a package lists what it offers, and the module that
defines each name is imported on first use, so ``import agent`` or ``import agent.server``
stays fast and pulls in nothing heavy. Base layer: imports nothing of ours."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``table`` maps each lazy name to the
    module that defines it (modules named as strings, which tests/test_layers.py reads too)."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
