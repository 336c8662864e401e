"""The plugin system: @skill, entry-point discovery (built-ins and the example plugin),
broken plugins, /help, and the public API."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agent.errors import SkillError


def test_decorator_builds_a_skill_without_registering_it():
    from skills import Skill, SkillsConfig, discover_skills, skill

    @skill(command="/Greet", intents=("greeting",))
    def greet(text: str, user_id: str) -> Iterator[str]:
        """Say hello.

        Longer text that is not part of the description."""
        yield f"hello {user_id}: {text}"

    assert isinstance(greet, Skill)
    assert (greet.name, greet.command, greet.intents, greet.description) == ("greet", "greet", ("greeting",), "Say hello.")
    assert "greet" not in discover_skills(SkillsConfig()).skills  # no global registry


def test_decorated_function_gets_request_fields_by_name(request_for):
    from skills import skill

    @skill
    def whole(request, history) -> str:
        """Return a string instead of yielding."""
        return f"{request.text}|{len(history)}"

    req = request_for("hi", history=[{"role": "user", "content": "x"}])
    assert list(whole.run(req)) == ["hi|1"]


def test_decorator_rejects_unknown_parameters_and_missing_description():
    from skills import skill

    with pytest.raises(SkillError, match="'weather_api'.*use 'request' or any of"):
        @skill
        def bad(weather_api) -> str:
            """Doc."""
            return ""

    with pytest.raises(SkillError, match="needs a description"):
        @skill
        def undocumented(text):
            return text


def test_builtins_are_discovered_through_entry_points():
    from skills import discover_skills, load_skills

    found = discover_skills()
    assert {"qa", "summarize", "code", "help"} <= set(found.skills)
    assert all(found.origins[n] == "llmos" for n in ("qa", "summarize", "code", "help"))
    from skills import SkillsConfig

    assert set(load_skills(SkillsConfig(enabled=("qa", "help")))) == {"qa", "help"}


def test_example_plugin_is_discovered_and_runs_in_an_agent(plugin_path, fake_agent):
    from skills import discover_skills, load_skills

    plugin_path("llmos-order-status", {"order_status": "order_status_skill:order_status"})
    found = discover_skills()
    assert found.origins["order_status"] == "llmos-order-status"
    agent, _ = fake_agent()
    agent.skills = load_skills()
    reply = agent.chat("/order 1001 please")
    assert reply.skill == "order_status"
    assert "Order 1001 (USB-C cable) is shipped" in reply.text
    assert "can't find order 9999" in agent.chat("/order 9999").text


def test_broken_plugins_are_logged_skipped_and_listed_by_help(plugin_path, fake_agent, caplog):
    from skills import discover_skills, load_skills

    plugin_path("llmos-broken", {"missing": "no_such_module_xyz:thing", "notaskill": "json:dumps",
                                 "qa": "order_status_skill:order_status"})
    with caplog.at_level(logging.WARNING, logger="skills.registry"):
        found = discover_skills()
    failed = {f.name: f.error for f in found.failures}
    assert "ModuleNotFoundError" in failed["missing"]
    assert "notaskill" in failed  # json.dumps() raises TypeError when called without arguments
    assert found.skills["qa"].__class__.__name__ == "QASkill"  # a plugin cannot replace a built-in
    assert "failed to load" in caplog.text
    agent, _ = fake_agent()
    agent.skills = load_skills()
    text = agent.chat("/help").text
    assert "/qa" in text and "/summarize" in text and "/code" in text
    assert "no_such_module_xyz" in text


def test_enabled_filter_does_not_import_other_plugins(plugin_path):
    from skills import SkillsConfig, discover_skills

    plugin_path("llmos-broken", {"missing": "no_such_module_xyz:thing"})
    found = discover_skills(SkillsConfig(enabled=("help",)))
    assert set(found.skills) == {"help"} and not found.failures


def test_a_skill_that_raises_falls_back_to_chat(fake_agent):
    from skills import skill

    @skill
    def explode(text: str) -> Iterator[str]:
        """Always fails."""
        yield "partial "
        raise SkillError("the weather service is down; try again later")

    agent, backend = fake_agent(["plain chat answer"])
    agent.skills = {"explode": explode}
    reply = agent.chat("/explode now")
    assert "weather service is down" in reply.text and "plain chat answer" in reply.text
    assert agent.chat("hello again").text  # the session survives


def test_skills_cli_lists_skills(capsys):
    import json

    from agent.cli.main import main

    assert main(["skills", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {s["name"] for s in data["skills"]} >= {"qa", "summarize", "code", "help"}
    assert data["code_execution"]["allowed"] is False


def test_public_api_is_explicit():
    import skills
    from tests.helpers.public_api import api_problems

    assert api_problems(skills) == []
    assert {"skill", "load_skills", "Skill", "SkillRequest", "SkillsConfig"} <= set(skills.__all__)


def test_http_config_keeps_execution_off_unless_operator_allows():
    from skills import SkillsConfig, for_http, load_skills

    on = SkillsConfig(code={"allow_execution": True})
    assert for_http(on).code.allow_execution is False
    assert for_http(SkillsConfig(code={"allow_execution": True, "allow_execution_over_http": True})).code.allow_execution
    assert load_skills(on, http=True)["code"].config.allow_execution is False
    assert load_skills(on)["code"].config.allow_execution is True
    code = load_skills(on)["code"]
    assert code.executes_code and not code.without_execution().executes_code  # what agent.server checks
