"""The package's public names, the config section and the CLI entry points."""

from __future__ import annotations

import pytest

import agent.server
from agent.cli.main import build_parser
from agent.config import load_config
from agent.server import ServerConfig
from tests.helpers.public_api import api_problems


def test_public_names_resolve():
    assert api_problems(agent.server) == []
    assert {"create_app", "ServerConfig"} <= set(agent.server.__all__)
    with pytest.raises(AttributeError):
        agent.server.nothing_here  # noqa: B018


def test_server_section_defaults_and_environment_overrides():
    config = load_config(environ={"LLMOS_SERVER__PORT": "9001", "LLMOS_SERVER__BATCHING__MAX_BATCH_SIZE": "4"})
    assert isinstance(config.server, ServerConfig)
    assert (config.server.host, config.server.port, config.server.batching.max_batch_size) == ("127.0.0.1", 9001, 4)
    assert config.server.api_keys == () and config.server.allow_code_execution is False


def test_cli_registers_serve_commands():
    parser = build_parser()
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--config", "x.yaml"])
    assert (args.host, args.port, args.config) == ("0.0.0.0", 9000, "x.yaml")
    assert parser.parse_args(["bench-server", "--fake", "--clients", "1,8"]).clients == "1,8"
    assert parser.parse_args(["serve-key", "--users", "a"]).users == "a"


def test_code_executing_skills_are_not_served_by_default(make_app):
    class Runner:
        name, description, intents, command, executes_code = "run", "runs code", (), "run", True

        def run(self, request):
            yield "ran"

    class Helper(Runner):
        name, command, executes_code = "help", "help", False

    _, agent, _ = make_app(agent_kwargs={"skills": {"run": Runner(), "help": Helper()}})
    assert set(agent.skills) == {"help"}
    _, agent, _ = make_app(agent_kwargs={"skills": {"run": Runner()}}, server={"allow_code_execution": True})
    assert set(agent.skills) == {"run"}
