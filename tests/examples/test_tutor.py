"""The tutor example end to end on the real default model and embedder: two sessions of one
learner (a struggle mentioned and summarised, then recalled), and a code exercise whose
learner-written solutions run in the sandbox, remembered for the next session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.examples import EXAMPLES, build_example_agent

TUTOR = EXAMPLES / "tutor"


def test_tutor_config_allows_execution_and_remembers():
    from agent.config import load_config

    config = load_config(TUTOR / "agent.yaml", environ={})
    assert config.persona == "tutor"
    assert config.skills.code.allow_execution
    assert config.memory.enabled
    assert config.generation.temperature == 0


def _passes(conversations: Path, data_dir: Path, skills: dict | None = None) -> None:
    """Run the scripted conversations against the tutor's agent; every turn must pass."""
    from agent.toolbox.convtest import load_suite, run_suite

    agent = build_example_agent(TUTOR / "agent.yaml", data_dir, skills=skills,
                                overrides={"generation": {"max_new_tokens": 32}})
    try:
        results = run_suite(agent, load_suite(conversations))
        failures = [f"{r.conversation} #{r.turn}: {r.failures} (reply: {r.reply[:300]!r})" for r in results if not r.passed]
        assert not failures, "\n".join(failures)
    finally:
        agent.close()


@pytest.mark.real
def test_tutor_conversations(tmp_path: Path):
    _passes(TUTOR / "conversations.yml", tmp_path / "data")


@pytest.mark.real
def test_tutor_exercise_in_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import sys

    from skills.config import SandboxConfig
    from skills.sandbox import Sandbox

    if Sandbox(SandboxConfig()).isolation.mode is None:
        pytest.skip("this machine cannot isolate code, so the exercise would not run")
    monkeypatch.syspath_prepend(str(TUTOR / "exercises"))
    sys.modules.pop("tutor_exercises", None)
    from tutor_exercises import check, exercise

    _passes(TUTOR / "exercise.yml", tmp_path / "data", {"exercise": exercise, "check": check})
