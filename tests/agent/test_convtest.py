import json
import subprocess
import sys

import pytest

from agent.errors import ConfigError
from agent.toolbox.convtest import load_suite, run_suite

SUITE = """
conversations:
  - name: echo
    user: ann
    turns:
      - user: hello there
        expect: {contains: ["hello"], not_contains: ["goodbye"], skill: none, handoff: false}
      - new_session: true
      - user: second session
        expect: {contains: ["nothing like this"]}
"""


def test_suite_reports_passes_and_failures(fake_agent, tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(SUITE)
    agent, _ = fake_agent()
    results = run_suite(agent, load_suite(path))
    assert [r.passed for r in results] == [True, False]
    assert "does not contain 'nothing like this'" in results[1].failures[0]
    sessions = agent.sessions("ann")
    assert len(sessions) == 2, "new_session starts a fresh session for the same user"


@pytest.mark.parametrize("bad, message", [
    ("conversations: [{name: x, turns: [{user: hi, expect: {intnt: a}}]}]", "intnt"),
    ("conversations: [{name: x, turns: [{}]}]", "either"),
    ("conversations: [", "not valid YAML"),
])
def test_bad_suites_are_clear_errors(tmp_path, bad, message):
    path = tmp_path / "c.yml"
    path.write_text(bad)
    with pytest.raises(ConfigError, match=message):
        load_suite(path)


def test_cli_exit_code_and_summary(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(SUITE)
    config = tmp_path / "agent.yaml"
    config.write_text(f"model: {{backend: fake}}\nmemory: {{enabled: false}}\nunderstanding: {{enabled: false}}\n"
                      f"data_dir: {tmp_path / 'data'}\n")
    result = subprocess.run([sys.executable, "-m", "agent.cli.main", "test", str(path), "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "1 passed, 1 failed" in result.stdout and "FAIL echo #2" in result.stdout
    as_json = subprocess.run([sys.executable, "-m", "agent.cli.main", "test", str(path), "--config", str(config),
                              "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(as_json.stdout)["passed"] == 1
