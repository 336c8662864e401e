"""The dialogue manager with the real memory store (fake embedder: no weights needed)."""

import pytest

from agent import Agent
from agent.backends import FakeBackend


@pytest.fixture
def memory_agent(fake_config, tmp_path):
    from memory import FakeEmbedder, build_store

    config = fake_config(memory={"enabled": True})
    embedder = FakeEmbedder(dim=64)
    store = build_store(config.memory, data_dir=tmp_path / "memory", embedder=embedder)
    backend = FakeBackend()
    agent = Agent(config, backend=backend, memory=store, embedder=embedder, skills={})
    yield agent, backend
    agent.close()


def test_a_fact_told_in_one_session_is_recalled_in_another_only_for_that_user(memory_agent):
    agent, backend = memory_agent
    agent.chat("My dog is called Biscuit and he loves carrots.", user_id="ann")
    reply = agent.chat("What is my dog called?", user_id="ann")  # a new session
    assert any("Biscuit" in m.text for m in reply.memories)
    assert "Biscuit" in backend.history[-1].messages[-1]["content"]
    other = agent.chat("What is my dog called?", user_id="bob")
    assert not any("Biscuit" in m.text for m in other.memories)
    assert "Biscuit" not in backend.history[-1].messages[-1]["content"]


def test_what_do_you_remember_lists_the_users_memories(memory_agent):
    agent, backend = memory_agent
    agent.chat("I live in Lyon.", user_id="ann")
    calls = len(backend.history)
    reply = agent.chat("What do you remember about me?", user_id="ann")
    assert reply.skill == "memory" and "Lyon" in reply.text
    assert [m.text for m in reply.memories if "Lyon" in m.text]
    assert len(backend.history) == calls, "listing memories needs no model call"
    empty = agent.chat("what do you know about me", user_id="carol")
    assert "don't remember anything" in empty.text


def test_commands_and_memory_questions_are_not_remembered(memory_agent):
    agent, _ = memory_agent
    agent.chat("I live in Lyon.", user_id="dee")
    agent.chat("/help", user_id="dee")
    agent.chat("What do you remember about me?", user_id="dee")
    reply = agent.chat("What do you remember about me?", user_id="dee")
    assert [m.text for m in reply.memories] == ["I live in Lyon."]


def test_forget_user_removes_memories_and_conversations(memory_agent):
    agent, _ = memory_agent
    agent.chat("My PIN hint is blue giraffe.", user_id="ann")
    assert agent.remember("ann")
    agent.forget_user("ann")
    assert agent.remember("ann") == [] and agent.sessions("ann") == []
    reply = agent.chat("what is my pin hint?", user_id="ann")
    assert not any("giraffe" in m.text for m in reply.memories)


def test_questions_go_to_qa_only_when_a_knowledge_base_exists(fake_config, tmp_path):
    """A failing test first caught `ask "What is the capital of France?"` answering
    "I don't know" from an empty knowledge base instead of chatting."""
    from agent.turn import Label, Understood
    from memory import FakeEmbedder, build_store, ingest_paths

    class AlwaysQuestion:
        def analyze(self, text, vector, prior):
            return Understood(intent=Label(label="question", score=0.99))

    # the fake embedder is not semantic: let every passage count as relevant here
    config = fake_config(memory={"enabled": True}, skills={"qa": {"min_similarity": -1.0}})
    embedder = FakeEmbedder(dim=64)
    store = build_store(config.memory, data_dir=tmp_path / "memory", embedder=embedder)
    agent = Agent(config, backend=FakeBackend(), memory=store, embedder=embedder, understanding=AlwaysQuestion())
    assert agent.chat("What is the capital of France?").skill is None
    doc = tmp_path / "faq.md"
    doc.write_text("# Returns\nYou can return any item within 30 days of delivery.\n")
    ingest_paths(store, [doc])
    assert agent.chat("How long do I have to return an item?").skill == "qa"
    # a knowledge base that holds nothing close enough to the question: chat answers, not
    # "I don't know" from the QA skill
    strict = fake_config(memory={"enabled": True}, skills={"qa": {"min_similarity": 0.99}})
    agent = Agent(strict, backend=FakeBackend(), memory=store, embedder=embedder, understanding=AlwaysQuestion())
    assert agent.chat("What is the capital of France?").skill is None
    agent.close()
