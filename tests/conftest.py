"""Shared fixtures: isolated data dirs, fake agents, tiny tokenizers, the real default model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `tests` has no __init__.py: the repository root on sys.path makes `tests.helpers` importable
# under a bare `pytest` too (`python -m pytest` puts the working directory there already).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the user's real data directory."""
    monkeypatch.setenv("LLMOS_DATA_DIR", str(tmp_path_factory.mktemp("llmos-data")))


@pytest.fixture
def fake_config(tmp_path: Path):
    from agent.config import load_config

    def make(**overrides):
        base = {"model": {"backend": "fake"}, "memory": {"enabled": False},
                "understanding": {"enabled": False}, "data_dir": str(tmp_path / "data")}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_config(environ={}, overrides=base)

    return make


@pytest.fixture
def fake_agent(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    agents = []

    def make(replies=(), **overrides):
        backend = FakeBackend(replies)
        agent = Agent(fake_config(**overrides), backend=backend, skills={})
        agents.append(agent)
        return agent, backend

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """Build (once per family) a tiny randomly initialised model with a tiny tokenizer."""
    from tests.helpers.tiny_models import build_tiny_model

    cache: dict[str, Path] = {}

    def make(family: str) -> Path:
        if family not in cache:
            cache[family] = build_tiny_model(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return cache[family]

    return make


@pytest.fixture(scope="session")
def real_model():
    """The embedded default model, loaded once for the whole test session."""
    from agent import load_model

    return load_model("smollm2-135m")
