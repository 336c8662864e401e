"""Fixtures for the skills tests: a memory store on the fake embedder, the example plugin
made discoverable through a dist-info folder (no pip install needed), a skill request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.skills import EXAMPLE_PLUGIN, GUIDE, write_dist_info


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put dist-info folders (and the example package) on sys.path: ``add(name, {ep: target})``."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))

    def add(name: str, entry_points: dict[str, str]) -> None:
        folder = tmp_path / f"site-{name}"
        write_dist_info(folder, name, entry_points)
        monkeypatch.syspath_prepend(str(folder))

    return add


@pytest.fixture
def store(tmp_path: Path):
    from memory import FakeEmbedder, MemoryConfig, MemoryStore

    s = MemoryStore(tmp_path / "memory", FakeEmbedder(dim=256), MemoryConfig())
    yield s
    s.close()


@pytest.fixture
def kb(store, tmp_path: Path):
    """The store with a small Markdown guide as a shared knowledge-base document."""
    from memory import MemoryItem

    paras = [p for p in GUIDE.split("\n\n") if p.strip()]
    store.add_many([MemoryItem(text=p, kind="document", source="guide.md", locator=f"part {i + 1}")
                    for i, p in enumerate(paras)], user_id=None, shared=True)
    return store


@pytest.fixture
def request_for(fake_config):
    """A SkillRequest for ``text`` with a fake backend (and optional memory/history)."""
    from agent.backends import FakeBackend
    from skills import SkillRequest

    def make(text: str, *, replies=(), memory=None, history=None, command=None, **overrides):
        backend = overrides.pop("backend", None) or FakeBackend(replies)
        config = fake_config(**overrides)
        return SkillRequest(text=text, command=command, user_id="ann", session_id="s1", backend=backend,
                            memory=memory, config=config, options=config.generation, history=history or [],
                            messages=[])

    return make
