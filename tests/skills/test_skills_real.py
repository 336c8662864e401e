"""The built-in skills with the real embedded models (SmolLM2-135M, MiniLM): the issue's
"done when" checks, end to end through the Agent. Kept to a few turns: they are slow."""

from __future__ import annotations

import pytest

from skills.code.extract import check_python, extract_blocks

pytestmark = pytest.mark.real

GUIDE = """# Acme returns policy

Customers can return any product within 30 days of delivery for a full refund.
Refunds are paid back to the original payment method within 5 business days.
Our returns warehouse is located in Rotterdam, in the Netherlands.
"""


@pytest.fixture(scope="module")
def embedder():
    from memory import SentenceEmbedder

    return SentenceEmbedder()


@pytest.fixture
def real_agent(real_model, embedder, fake_config, tmp_path):
    from agent import Agent
    from agent.backends import TransformersBackend
    from memory import MemoryConfig, MemoryStore
    from skills import load_skills

    # Short reply budgets: the checks are about the plumbing, and CI's 2 cores are slow.
    config = fake_config(model={"backend": "transformers"},
                         skills={"qa": {"max_answer_tokens": 16}, "summarize": {"max_summary_tokens": 40},
                                 "code": {"max_code_tokens": 120}})
    store = MemoryStore(tmp_path / "memory", embedder, MemoryConfig())
    agent = Agent(config, backend=TransformersBackend(real_model), memory=store, embedder=embedder,
                  skills=load_skills(config.skills))
    yield agent
    agent.close()


def test_qa_cites_a_knowledge_base_file_and_summarize_covers_the_session(real_agent, tmp_path):
    from memory.kb import ingest_paths

    doc = tmp_path / "returns.md"
    doc.write_text(GUIDE, encoding="utf-8")
    assert ingest_paths(real_agent.memory, [doc]).files == 1
    session = real_agent.new_session().id
    reply = real_agent.chat("/qa Where is the returns warehouse located?", session_id=session)
    assert reply.skill == "qa" and "[1]" in reply.text and "returns.md" in reply.text, reply.text
    assert any(m.source and m.source.endswith("returns.md") for m in reply.memories)
    summary = real_agent.chat("/summarize", session_id=session)
    assert summary.skill == "summarize" and len(summary.text.split()) >= 3


def test_code_returns_a_block_that_parses(real_agent):
    reply = real_agent.chat("/code write a Python function that reverses a string")
    blocks = extract_blocks(reply.text)
    assert reply.skill == "code" and blocks, reply.text
    assert check_python(blocks[0].code) is None, reply.text
