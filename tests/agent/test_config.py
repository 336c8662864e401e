from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config import load_config
from agent.errors import ConfigError
from agent.options import GenerationOptions


def test_defaults_load_without_a_file():
    config = load_config(environ={})
    assert config.model.name == "smollm2-135m"
    assert config.max_input_chars == 32_000


def test_unknown_key_is_an_error_that_names_it(tmp_path: Path):
    path = tmp_path / "agent.yaml"
    path.write_text("model:\n  nmae: gpt2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model.nmae'"):
        load_config(path, environ={})


def test_bad_value_names_the_field(tmp_path: Path):
    path = tmp_path / "agent.yaml"
    path.write_text("generation:\n  temperature: -1\n")
    with pytest.raises(ConfigError, match="generation.temperature"):
        load_config(path, environ={})


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy, environ={})


def test_environment_overrides_the_file(tmp_path: Path):
    path = tmp_path / "agent.yaml"
    path.write_text("model:\n  name: gpt2\ngeneration:\n  max_new_tokens: 10\n")
    config = load_config(path, environ={"LLMOS_MODEL__NAME": "qwen2.5-0.5b", "LLMOS_GENERATION__MAX_NEW_TOKENS": "99"})
    assert config.model.name == "qwen2.5-0.5b"
    assert config.generation.max_new_tokens == 99


def test_unknown_environment_override_is_an_error():
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        load_config(environ={"LLMOS_MODLE__NAME": "x"})


def test_relative_paths_resolve_against_the_file(tmp_path: Path):
    (tmp_path / "persona.j2").write_text("You are {{ agent_name }}.")
    path = tmp_path / "agent.yaml"
    path.write_text("persona: persona.j2\ndata_dir: data\n")
    config = load_config(path, environ={})
    assert Path(config.persona) == tmp_path / "persona.j2"
    assert config.resolved_data_dir() == tmp_path / "data"


def test_config_is_frozen():
    config = load_config(environ={})
    with pytest.raises(ValidationError, match="frozen"):
        config.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [{"temperature": 9}, {"top_p": 0}, {"max_new_tokens": 0}, {"stop": [""]},
                                 {"unknown": 1}])
def test_generation_options_are_validated(bad):
    with pytest.raises(ValidationError):
        GenerationOptions(**bad)


def test_generation_options_accept_a_single_stop_string():
    assert GenerationOptions(stop="###").stop == ("###",)
