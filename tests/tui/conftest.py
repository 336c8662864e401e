"""Fixtures for the terminal UI tests: the fake agent, anyio on asyncio, no system clipboard.
The pilot shortcuts live in tests/helpers/tui.py, the fake agent in tests/helpers/tui_fakes.py."""

from __future__ import annotations

import pytest

from tests.helpers.tui_fakes import FakeAgent


@pytest.fixture
def anyio_backend() -> str:
    # Async tests run on anyio's pytest plugin (anyio comes with httpx), on asyncio like Textual.
    return "asyncio"


@pytest.fixture
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture(autouse=True)
def _no_system_clipboard(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests read app.clipboard; never touch the machine's real clipboard.
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
