"""With the shipped all-MiniLM-L6-v2: paraphrases are recalled, across sessions, per user."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import MemoryConfig, SentenceEmbedder, build_store

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


def test_a_fact_told_in_one_session_is_recalled_in_another(tmp_path: Path, real_embedder) -> None:
    store = build_store(MemoryConfig(), data_dir=tmp_path / "memory", embedder=real_embedder)
    store.add_many(["I'm allergic to peanuts, so be careful with recipes",
                    "The weather was lovely on the weekend", "I work as a nurse at the city hospital"],
                   user_id="ann", session_id="monday")
    store.add("My brother is allergic to shellfish", user_id="bob", session_id="b1")
    store.close()

    store = build_store(MemoryConfig(), data_dir=tmp_path / "memory", embedder=real_embedder)
    try:
        query = "which foods should I avoid?"
        vector = real_embedder.encode([query])[0]  # the dialogue manager's one embedding per turn
        ann = store.search(query, k=2, user_id="ann", vector=vector)
        assert ann[0].text.startswith("I'm allergic to peanuts") and ann[0].session_id == "monday"
        assert ann[0].similarity is not None and ann[0].similarity > 0.2
        bob = store.search(query, k=10, user_id="bob", vector=vector)
        assert [h.text for h in bob] == ["My brother is allergic to shellfish"]
        assert store.search("what is my job?", k=1, user_id="ann")[0].text.startswith("I work as a nurse")
    finally:
        store.close()


def test_the_agent_recalls_a_fact_in_a_new_session_for_that_user_only(tmp_path: Path, real_embedder) -> None:
    from agent import Agent
    from agent.backends import FakeBackend
    from agent.config import load_config

    config = load_config(environ={}, overrides={
        "model": {"backend": "fake"}, "understanding": {"enabled": False}, "data_dir": str(tmp_path / "data")})
    agent = Agent(config, backend=FakeBackend(["Noted!", "You have a dog named Biscuit.", "No idea."]),
                  skills={}, embedder=real_embedder)
    try:
        agent.chat("Remember this: my dog is a beagle named Biscuit", user_id="ann")
        later = agent.chat("what is my dog called?", user_id="ann")  # a new session
        assert any("Biscuit" in m.text for m in later.memories)
        other = agent.chat("what is my dog called?", user_id="bob")
        assert not any("Biscuit" in m.text for m in other.memories)
    finally:
        agent.close()


def test_the_int8_embedder_stays_close_to_fp32(real_embedder) -> None:
    import numpy as np

    from memory import SentenceEmbedder

    int8 = SentenceEmbedder(int8=True)
    assert int8.name == "all-minilm-l6-v2+int8" and int8.dim == real_embedder.dim  # a store re-embeds on a switch
    texts = ["I'm allergic to peanuts", "my sister moved to Lisbon in May", "which foods should I avoid?"]
    close = (int8.encode(texts) * real_embedder.encode(texts)).sum(axis=1)
    assert close.min() > 0.9
    vectors = int8.encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[2] > vectors[1] @ vectors[2]  # still ranks the allergy first
