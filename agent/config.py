"""Agent configuration: pydantic models, a YAML file and ``LLMOS_*`` environment overrides.

Every model is frozen and forbids unknown keys, so a typo is an error that names the key.
Environment variables override the file: ``LLMOS_MODEL__NAME=gpt2`` sets ``model.name``
(``__`` separates nesting levels); values are parsed as YAML scalars.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.options import GenerationOptions
from agent.server.config import ServerConfig
from agent.understand.config import UnderstandConfig
from memory.config import MemoryConfig
from skills.config import SkillsConfig

__all__ = [
    "AgentConfig",
    "ModelConfig",
    "HistoryConfig",
    "load_config",
    "default_data_dir",
    "default_cache_dir",
]

# Environment variables with the LLMOS_ prefix that are not config overrides.
_NON_CONFIG_ENV = {"LLMOS_CACHE_DIR", "LLMOS_CONFIG", "LLMOS_LOG_LEVEL", "LLMOS_TEST_REAL"}


def default_data_dir() -> Path:
    """Where conversations and memories live unless the config says otherwise."""
    env = os.environ.get("LLMOS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("llmos", appauthor=False))


def default_cache_dir() -> Path:
    """Where converted model weights are cached (``LLMOS_CACHE_DIR`` overrides)."""
    env = os.environ.get("LLMOS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmos", appauthor=False))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    """Which language model answers, and where it runs."""

    backend: Literal["transformers", "openai", "fake"] = "transformers"
    """`transformers` runs the model in-process; `openai` talks to any OpenAI-compatible
    server (vLLM, TGI, llama.cpp, llmos serve); `fake` is for tests."""
    name: str = "smollm2-135m"
    """A preset (see `llmos models`), a local directory, a `.gguf` file or a Hugging Face id;
    for the openai backend, the model name sent to the server."""
    device: str = "auto"
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:1`, ..."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto`: bf16 on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16), else fp32."""
    quantization: Literal["int8", "8bit", "4bit"] | None = None
    """`int8`: weight-only int8 on CPU; `8bit`/`4bit`: bitsandbytes on GPU."""
    prefill: Literal["auto", "int8", "fp32"] = "auto"
    """How the CPU fast decoder multiplies prompts: `int8` (per-token smoothed int8, ~30%
    faster time to first token, prefill perplexity +1.3%), `fp32` (exact), `auto` (int8
    where the CPU has FBGEMM and the weights are int4/int8)."""
    base_url: str | None = None
    """openai backend: the server's base URL, e.g. http://127.0.0.1:8000/v1."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai backend: the environment variable holding the API key (may be unset)."""
    timeout_s: float = Field(120.0, gt=0)
    """openai backend: seconds to wait for the server."""
    context_window: int | None = Field(None, ge=256)
    """Override the model's context length (tokens)."""


class HistoryConfig(_Frozen):
    """How much conversation goes into each prompt."""

    max_prompt_tokens: int | None = Field(None, ge=128)
    """Cap on prompt tokens; default: the model's context minus the reply budget."""
    summarize_overflow: bool = True
    """Fold turns that no longer fit into a running summary instead of dropping them."""
    summary_max_tokens: int = Field(96, ge=16, le=1024)
    """Length of the running summary of older turns."""


class AgentConfig(_Frozen):
    """Everything that defines an agent. Load it with :func:`load_config`."""

    name: str = "llmos"
    """The agent's name, shown in the UI and used in prompts."""
    persona: str = "assistant"
    """A packaged persona (`assistant`, `support`, `tutor`) or a path to a Jinja2 template."""
    instructions: str = ""
    """Extra system instructions appended to the persona."""
    model: ModelConfig = ModelConfig()
    generation: GenerationOptions = GenerationOptions()
    history: HistoryConfig = HistoryConfig()
    memory: MemoryConfig = MemoryConfig()
    understanding: UnderstandConfig = UnderstandConfig()
    skills: SkillsConfig = SkillsConfig()
    server: ServerConfig = ServerConfig()
    data_dir: Path | None = None
    """Conversations and memories; default: the platform's user data directory."""
    max_input_chars: int = Field(32_000, ge=1)
    """Longer user messages are rejected with an InputError."""

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith("LLMOS_") or key in _NON_CONFIG_ENV:
            continue
        path = key[len("LLMOS_"):].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key} conflicts with another LLMOS_ variable")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{where}': remove it or check its spelling")
        else:
            lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_config(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> AgentConfig:
    """Build an :class:`AgentConfig` from a YAML file, ``LLMOS_*`` variables and overrides.

    Later sources win: file < environment < ``overrides``. Relative paths in the file
    (``persona``, ``data_dir``) are resolved against the file's folder.
    """
    environ = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = {}
    source = "defaults"
    if path is None and environ.get("LLMOS_CONFIG"):
        path = environ["LLMOS_CONFIG"]
    if path is not None:
        path = Path(path).expanduser()
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist: check the path")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of keys to values at the top level")
        data = _resolve_relative(loaded, path.parent)
    data = _merge(data, _env_overrides(environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _resolve_relative(data: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(data)
    persona = out.get("persona")
    if isinstance(persona, str) and persona.endswith((".j2", ".jinja", ".jinja2", ".txt")):
        out["persona"] = str((base / persona).resolve())
    if isinstance(out.get("data_dir"), str):
        out["data_dir"] = str((base / Path(out["data_dir"]).expanduser()).resolve())
    return out
