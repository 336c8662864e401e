"""Fixtures for the skills tests: a memory store on the fake embedder, the example plugin
made discoverable through a dist-info folder (no pip install needed), a skill request."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_status_skill"


def write_dist_info(folder: Path, name: str, entry_points: dict[str, str]) -> None:
    """A minimal installed-distribution record: what importlib.metadata scans sys.path for."""
    info = folder / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n", encoding="utf-8")
    lines = ["[llmos.skills]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put dist-info folders (and the example package) on sys.path: ``add(name, {ep: target})``."""
    monkeypatch.syspath_prepend(str(EXAMPLE))

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


GUIDE = """# Returns guide

Customers may return any item within 30 days of delivery for a full refund.
Refunds are paid to the original payment method within 5 business days.

## Shipping

Standard shipping takes 3 to 5 business days. Express shipping costs 12 euros and arrives the next day.
The warehouse is located in Rotterdam.
"""


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
