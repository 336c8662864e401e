"""python_api.py and companion.yaml: valid, and python_api runs on a fake backend."""

from __future__ import annotations

import runpy

import pytest

from tests.helpers.examples import EXAMPLES


def test_companion_config_loads():
    from agent.config import load_config

    config = load_config(EXAMPLES / "companion.yaml", environ={})
    assert config.memory.enabled and config.memory.k == 5


def test_python_api_runs_on_a_fake_backend(monkeypatch: pytest.MonkeyPatch, tmp_path):
    import agent as agent_pkg
    from agent.backends import FakeBackend
    from agent.config import load_config
    from memory import FakeEmbedder

    real_agent = agent_pkg.Agent

    def fake_agent(config=None, **kwargs):
        config = load_config(environ={}, overrides={"data_dir": str(tmp_path), "model": {"backend": "fake"},
                                                    "understanding": {"enabled": False},
                                                    "memory": {"embedder": "fake"}})
        return real_agent(config, backend=FakeBackend(["Hello Ann!"] * 10), embedder=FakeEmbedder(dim=64),
                          **kwargs)

    monkeypatch.setattr(agent_pkg, "Agent", fake_agent)
    runpy.run_path(str(EXAMPLES / "python_api.py"), run_name="__main__")
