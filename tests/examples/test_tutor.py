"""The tutor example end to end: two sessions of one learner on the real default model.
Session one: a struggle is mentioned and the session is summarised. Session two: the tutor
recalls the struggle from memory. (The sandboxed code exercise, examples/tutor/exercise.yml, is
not run here: model-written code takes minutes on a shared CPU.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.conftest import EXAMPLES, build_example_agent

TUTOR = EXAMPLES / "tutor"


def test_tutor_config_allows_execution_and_remembers():
    from agent.config import load_config

    config = load_config(TUTOR / "agent.yaml", environ={})
    assert config.persona == "tutor"
    assert config.skills.code.allow_execution
    assert config.memory.enabled
    assert config.generation.temperature == 0


@pytest.mark.real
def test_tutor_conversations(tmp_path: Path):
    from agent.convtest import load_suite, run_suite

    agent = build_example_agent(TUTOR / "agent.yaml", tmp_path / "data",
                                overrides={"generation": {"max_new_tokens": 32}})
    try:
        results = run_suite(agent, load_suite(TUTOR / "conversations.yml"))
        failures = [f"{r.conversation} #{r.turn}: {r.failures} (reply: {r.reply[:300]!r})" for r in results if not r.passed]
        assert not failures, "\n".join(failures)
    finally:
        agent.close()
