"""Fixtures for the examples' end-to-end tests (the examples folder, and building an
example's agent, live in tests/helpers/examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.examples import EXAMPLES


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
