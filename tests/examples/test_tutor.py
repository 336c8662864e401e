"""The tutor example end to end: two sessions of one learner on the real default model.
Session one: a struggle is mentioned, a code exercise is checked in the sandbox (or the
sandbox's refusal is reported, on machines that cannot isolate), the session is summarised.
Session two: the tutor recalls the struggle from memory."""

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
        code_reply = results[1].reply
        # Either the sandbox ran the learner's assert, or it refused and said why.
        assert "in the sandbox" in code_reply or "not run:" in code_reply or "parse" in code_reply \
            or "could not get code" in code_reply
    finally:
        agent.close()
