"""The memory seam: the agent uses its memory only through agent.turn.MemoryBackend, which the
in-tree store and the test fake both satisfy (at run time, and for mypy), so the agent works
the same with either."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.turn import MemoryBackend
from tests.helpers.memory import FakeMemory

ROOT = Path(__file__).resolve().parents[2]


def test_the_store_and_the_fake_have_every_method_of_the_protocol(tmp_path):
    from memory import FakeEmbedder, MemoryConfig, build_store

    store = build_store(MemoryConfig(), data_dir=tmp_path, embedder=FakeEmbedder())
    try:
        assert isinstance(store, MemoryBackend) and isinstance(FakeMemory(), MemoryBackend)
    finally:
        store.close()
    assert not isinstance(object(), MemoryBackend)


@pytest.mark.slow  # mypy from a cold cache: up to a minute on 2 busy cores
def test_mypy_finds_both_satisfy_the_protocol_with_its_signatures():
    api = pytest.importorskip("mypy.api")
    out, err, status = api.run(["--follow-imports=silent", "--ignore-missing-imports", "--no-error-summary",
                                str(ROOT / "tests" / "helpers" / "memory.py")])
    assert status == 0, out + err


def _agent(fake_config, memory):
    from agent import Agent
    from agent.backends import FakeBackend
    from skills import load_skills

    return Agent(fake_config(memory={"enabled": True}), backend=FakeBackend(), memory=memory, skills=load_skills())


def test_the_agent_lists_forgets_and_finds_documents_through_the_seam(fake_config):
    memory = FakeMemory()
    memory.add("Ann's cat is called Miso", user_id="ann")
    other = memory.add("Bob likes tea", user_id="bob")
    agent = _agent(fake_config, memory)
    try:
        assert [m.text for m in agent.remember("ann")] == ["Ann's cat is called Miso"]
        question = "What does the refund policy say about returns?"
        assert agent.chat(question, user_id="ann").skill is None  # no documents: plain chat
        memory.add("Refund policy: returns are accepted within 30 days of delivery.", user_id=None,
                   kind="document", source="policy.md")
        assert agent.chat(question, user_id="ann").skill == "qa"  # a document now grounds questions
        agent.forget_memory([other])
        assert memory.list("bob") == []
        agent.forget_user("ann")
        assert agent.remember("ann") == [] and memory.has_documents("ann")  # the shared document stays
    finally:
        agent.close()


def test_documents_need_the_store_that_can_hold_them(fake_config, tmp_path):
    from agent.errors import MemoryStoreError

    agent = _agent(fake_config, FakeMemory())
    try:
        (tmp_path / "a.md").write_text("hello")
        with pytest.raises(MemoryStoreError, match="FakeMemory"):
            agent.add_document(tmp_path / "a.md")
    finally:
        agent.close()
