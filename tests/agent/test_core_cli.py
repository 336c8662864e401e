import json
import subprocess
import sys

import pytest


def llmos(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "agent.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_help_lists_the_commands():
    result = llmos("--help")
    assert result.returncode == 0
    for command in ("chat", "ask", "models", "bench", "train", "eval"):
        assert command in result.stdout


def test_library_errors_are_rendered_without_a_traceback(tmp_path):
    result = llmos("ask", "hi", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "error: config file" in result.stderr and "Traceback" not in result.stderr


def test_unknown_config_key_is_rendered(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("modle: {}\n")
    result = llmos("ask", "hi", "--config", str(path))
    assert result.returncode == 2 and "unknown key 'modle'" in result.stderr


def test_models_lists_the_default_preset():
    result = llmos("models", "--json")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert rows[0]["name"] == "smollm2-135m" and rows[0]["status"] != "missing"


def test_ask_json_with_the_fake_backend(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(f"model: {{backend: fake}}\nmemory: {{enabled: false}}\nunderstanding: {{enabled: false}}\n"
                    f"data_dir: {tmp_path / 'data'}\n")
    result = llmos("ask", "hello there", "--json", "--config", str(path), "--user", "ann")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["text"] == "You said: hello there"
    for key in ("session_id", "user_id", "intent", "sentiment", "skill", "memories", "handoff", "timings_ms", "tokens"):
        assert key in reply
    assert reply["user_id"] == "ann" and reply["timings_ms"]["total"] > 0
    again = llmos("ask", "second", "--json", "--config", str(path), "--user", "ann", "--session", reply["session_id"])
    assert json.loads(again.stdout)["session_id"] == reply["session_id"]


def test_empty_message_is_an_input_error(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(f"model: {{backend: fake}}\nmemory: {{enabled: false}}\nunderstanding: {{enabled: false}}\n"
                    f"data_dir: {tmp_path / 'data'}\n")
    result = llmos("ask", "  ", "--config", str(path))
    assert result.returncode == 2 and "empty" in result.stderr


@pytest.mark.parametrize("package", ["agent", "memory", "skills"])
def test_public_api_is_explicit(package):
    import importlib

    from tests.helpers.public_api import api_problems

    module = importlib.import_module(package)
    assert module.__all__, f"{package} must list its public API in __all__"
    assert api_problems(module) == []
