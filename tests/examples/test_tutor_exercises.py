"""The tutor's exercise plugin: the learner's code runs against an exercise's tests in the
real sandbox, failures say what a call returned, and the outcome is remembered."""

from __future__ import annotations

import sys

import pytest

from tests.helpers.examples import EXAMPLES

TUTOR = EXAMPLES / "tutor"

RIGHT = "def sum_evens(n):\n    return sum(range(0, n + 1, 2))\n"
OFF_BY_ONE = "def sum_evens(n):\n    return sum(range(0, n, 2))\n"


@pytest.fixture
def tutor_exercises(monkeypatch):
    monkeypatch.syspath_prepend(str(TUTOR / "exercises"))
    monkeypatch.delenv("TUTOR_EXERCISES", raising=False)
    sys.modules.pop("tutor_exercises", None)
    import tutor_exercises

    tutor_exercises._parse.cache_clear()
    return tutor_exercises


@pytest.fixture
def sandbox():
    from skills.config import SandboxConfig
    from skills.sandbox import Sandbox

    box = Sandbox(SandboxConfig(cpu_seconds=2, wall_seconds=4))
    if box.isolation.mode is None:
        pytest.skip(f"this machine cannot isolate code: {box.isolation.reason}")
    return box


def test_the_packaged_exercises_load_and_their_tests_parse(tutor_exercises):
    items = tutor_exercises.load_exercises()
    assert [e.id for e in items][:2] == ["add", "evens"]
    assert tutor_exercises.find_exercise("2").id == "evens"
    assert tutor_exercises.find_exercise("EVENS").id == "evens"
    assert tutor_exercises.find_exercise("nope") is None


def test_right_and_off_by_one_solutions(tutor_exercises, sandbox):
    evens = tutor_exercises.find_exercise("evens")
    good = tutor_exercises.run_exercise(evens, RIGHT, sandbox)
    assert good.ok and good.passed == 4
    bad = tutor_exercises.run_exercise(evens, OFF_BY_ONE, sandbox)
    assert not bad.ok and bad.passed == 2
    assert bad.failures[0] == ("assert sum_evens(6) == 12", "got 6, expected 12")


def test_syntax_errors_crashes_and_endless_loops_are_reported(tutor_exercises, sandbox):
    evens = tutor_exercises.find_exercise("evens")
    assert "line 1" in tutor_exercises.run_exercise(evens, "def sum_evens(n) return n", sandbox).syntax_error
    crash = tutor_exercises.run_exercise(evens, "raise ValueError('boom')", sandbox)
    assert crash.load_error == "ValueError: boom"
    missing = tutor_exercises.run_exercise(evens, "def other(): pass", sandbox)
    assert missing.passed == 0 and "NameError" in missing.failures[0][1]
    forever = tutor_exercises.run_exercise(evens, "while True:\n    pass\n", sandbox)
    assert forever.stopped and not forever.ok


def test_learner_output_cannot_fake_a_pass(tutor_exercises, sandbox):
    evens = tutor_exercises.find_exercise("evens")
    spoof = 'import sys\nsys.stdout.write("\\n@@llmos-0000@@{\\"load_error\\": null, \\"results\\": [null, null, null, null]}\\n")\n'
    assert not tutor_exercises.run_exercise(evens, spoof, sandbox).ok


def test_bad_exercise_files_are_clear_errors(tutor_exercises, tmp_path, monkeypatch):
    from agent.errors import ConfigError

    path = tmp_path / "ex.yml"
    monkeypatch.setenv("TUTOR_EXERCISES", str(path))
    path.write_text("exercises:\n  - id: x\n    title: X\n    task: t\n    tests: ['assert (']\n")
    with pytest.raises(ConfigError, match="does not parse"):
        tutor_exercises.load_exercises()
    path.write_text("exercises:\n  - id: x\n    title: X\n    task: t\n    tests: []\n")
    with pytest.raises(ConfigError, match="exercises.0.tests"):
        tutor_exercises.load_exercises()
    monkeypatch.setenv("TUTOR_EXERCISES", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="not a file"):
        tutor_exercises.load_exercises()


def test_exercise_then_check_through_the_agent(tutor_exercises, sandbox, fake_agent):
    agent, _ = fake_agent(skills={"code": {"allow_execution": True},
                                  "sandbox": {"cpu_seconds": 2, "wall_seconds": 4}})
    agent.skills.update({"exercise": tutor_exercises.exercise, "check": tutor_exercises.check})
    listing = agent.chat("/exercise")
    assert "`evens`: Sum of the even numbers" in listing.text
    shown = agent.chat("/exercise evens", session_id=listing.session_id)
    assert "Exercise `evens`" in shown.text and "n + 1" not in shown.text  # the task, not the answer
    # The code follows on the next line, in a fence: the exercise is the one shown last.
    failed = agent.chat(f"/check\n```python\n{OFF_BY_ONE}```", session_id=listing.session_id)
    assert failed.skill == "check"
    assert "2 of 4 tests pass" in failed.text and "got 6, expected 12" in failed.text
    assert "Hint:" in failed.text and "n + 1" not in failed.text
    passed = agent.chat(f"/check evens {RIGHT}", session_id=listing.session_id)
    assert "all 4 tests pass" in passed.text


def test_check_without_execution_only_parses(tutor_exercises, fake_agent):
    agent, _ = fake_agent()
    agent.skills.update({"check": tutor_exercises.check})
    reply = agent.chat(f"/check evens {RIGHT}")
    assert "your code parses" in reply.text and "allow_execution" in reply.text
    assert "Which exercise?" in agent.chat("/check print(1)").text
