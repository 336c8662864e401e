"""Agent configuration: pydantic models, a YAML file and ``LLMOS_*`` environment overrides.

Every model is frozen and forbids unknown keys, so a typo is an error that names the key.
Environment variables override the file: ``LLMOS_MODEL__NAME=gpt2`` sets ``model.name``
(``__`` separates nesting levels); values are parsed as YAML scalars.

Each layer owns the schema of its section (``model:`` in :mod:`agent.models.config`,
``memory:``, ``understanding:``, ``skills:``); this module composes them with the sections
that belong to the agent as a whole (``history:``) or to a face above it (``server:``, whose
schema lives here so that the dialogue layer never imports the server).

The ``server:`` section, for a support integration with one key for the helpdesk and one for
a bot::

    server:
      api_keys:
        - name: helpdesk
          sha256: 491f6a850973271015a874a8fdd21993da346028075053ee207ef3ba6bb4e804
          users: ["*"]                 # may act for any user
        - name: shop-bot
          sha256: faf1f1ea57ea58e5b172ad89af114d41a3b5330a65ca5c427827a5fd0b662bd7
          users: [shop-bot]            # acts only for this user
          rate_limit_per_minute: 120
      webhook:
        url: https://helpdesk.example.com/hooks/llmos-handoff

Keys are stored as SHA-256 hashes: ``llmos serve-key`` makes a key and prints its hash.
With no key configured the server answers loopback clients only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import ConfigError
from agent.models.config import ModelConfig
from agent.options import GenerationOptions
from agent.paths import default_data_dir
from agent.understand.config import UnderstandConfig
from memory.config import MemoryConfig
from skills.config import SkillsConfig, ToolsConfig

__all__ = [
    "AgentConfig",
    "ModelConfig",
    "HistoryConfig",
    "ServerConfig",
    "ApiKeyConfig",
    "WebhookConfig",
    "BatchingConfig",
    "ANY_USER",
    "load_config",
]

# Environment variables with the LLMOS_ prefix that are not config overrides.
_NON_CONFIG_ENV = {"LLMOS_CACHE_DIR", "LLMOS_CONFIG", "LLMOS_LOG_LEVEL", "LLMOS_TEST_REAL"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryConfig(_Frozen):
    """How much conversation goes into each prompt."""

    max_prompt_tokens: int | None = Field(None, ge=128)
    """Cap on prompt tokens; default: the model's context minus the reply budget."""
    summarize_overflow: bool = True
    """Fold turns that no longer fit into a running summary instead of dropping them."""
    summary_max_tokens: int = Field(96, ge=16, le=1024)
    """Length of the running summary of older turns."""


ANY_USER = "*"
"""In ``ApiKeyConfig.users``: the key may act for any user."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ApiKeyConfig(_Frozen):
    """One API key: its hash and the users it may act for."""

    name: str = Field(min_length=1, max_length=64)
    """A label for logs and error messages (never the key itself)."""
    sha256: str
    """Hex SHA-256 of the key (``llmos serve-key`` prints it); the key itself is never stored."""
    users: tuple[str, ...] = Field(min_length=1)
    """User ids (memory namespaces) this key may act for; ``"*"`` means any user. The first
    one is the default when a request names no user."""
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    """Overrides ``server.rate_limit_per_minute`` for this key."""
    max_concurrent: int | None = Field(default=None, ge=1)
    """Overrides ``server.max_concurrent`` for this key."""

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SHA256.match(value):
            raise ValueError("must be the 64-character hex SHA-256 of the key: run `llmos serve-key` to make one")
        return value


class WebhookConfig(_Frozen):
    """Where to POST a session summary when a turn hands off to a human."""

    url: str | None = None
    """The endpoint (http or https); unset: no webhook."""
    retries: int = Field(default=5, ge=0, le=20)
    """Attempts after the first before the notification is dropped (and logged)."""
    backoff_s: float = Field(default=0.5, gt=0.0, le=60.0)
    """Delay before the first retry; it doubles on each further retry (with jitter)."""
    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    """Seconds to wait for the endpoint per attempt."""
    secret_env: str | None = None
    """Environment variable holding a shared secret; when set, each POST carries
    ``X-Llmos-Signature: sha256=<HMAC of the body>`` so the receiver can verify it."""
    transcript_messages: int = Field(default=20, ge=0, le=500)
    """How many of the session's latest messages go into the payload."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class BatchingConfig(_Frozen):
    """Continuous batching of concurrent generations of a local model (``llmos serve``)."""

    enabled: bool = True
    """Batch concurrent requests into one forward pass per step (continuous batching)."""
    engine: Literal["auto", "fast", "transformers"] = "auto"
    """Whose forward pass: ``fast``, the fast CPU decoder's int8/int4 kernels (Llama-family
    models on the CPU); ``transformers``, transformers' forward (every decoder-only model,
    CUDA); ``auto``, fast where the model runs on it, else transformers."""
    max_batch_size: int = Field(default=16, ge=1, le=256)
    """Most sequences decoded together; more wait for a free slot."""
    window_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    """When idle, wait this long after the first request for others to join the batch."""
    max_prefill_tokens: int = Field(default=2048, ge=16)
    """transformers engine: prompt tokens prefilled between two decode steps, so running
    streams keep flowing while new ones join (at least one prompt is always admitted)."""
    prefill_chunk: int = Field(default=128, ge=16, le=8192)
    """fast engine: prompt tokens prefilled between two decode steps while streams run (a
    newcomer's prompt is split into such chunks; with nothing running it is done at once)."""
    kv_limit_mb: float = Field(default=2048.0, ge=16.0)
    """fast engine: key/value memory of the running streams; newcomers beyond it wait."""
    prefix_cache_mb: float = Field(default=256.0, ge=0.0)
    """fast engine: finished streams' keys/values kept so that a prompt starting the same
    (the next turn of a conversation, a shared system prompt) only prefills what is new."""


class ServerConfig(_Frozen):
    """The OpenAI-compatible HTTP server (``llmos serve``)."""

    host: str = "127.0.0.1"
    """Interface to listen on; ``--host`` overrides it."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port; ``--port`` overrides it."""
    api_keys: tuple[ApiKeyConfig, ...] = ()
    """Accepted keys (``Authorization: Bearer KEY``). None: loopback clients only, any user."""
    rate_limit_per_minute: int = Field(default=600, ge=1)
    """Requests per minute per key (a token bucket; bursts up to ``rate_limit_burst``)."""
    rate_limit_burst: int = Field(default=60, ge=1)
    """Requests a key may make at once before the per-minute rate applies."""
    max_concurrent: int = Field(default=32, ge=1)
    """Turns in flight per key; more are answered 429."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body; larger ones are answered 413 without being read."""
    max_messages: int = Field(default=256, ge=1)
    """Most messages in one chat-completions request."""
    stream_flush_ms: float = Field(default=50.0, ge=0.0, le=1000.0)
    """Streamed replies: pieces that arrive within this many milliseconds of the last write
    go out together (the first piece and the end at once). 0: every piece as it comes. Fewer,
    larger writes cut the server's CPU per request by about half at 50 concurrent streams."""
    max_workers: int = Field(default=64, ge=1, le=4096)
    """Threads running turns (a turn holds one while it generates)."""
    torch_threads: int | None = Field(default=None, ge=1, le=512)
    """Intra-op CPU threads for the local model (default: torch's choice). On a CPU shared with
    other busy processes, fewer threads than cores avoids threads spinning for a core."""
    model_alias: str | None = None
    """The model id clients name for the full agent pipeline (default: the agent's name)."""
    docs: Literal["protected", "public", "off"] = "protected"
    """The API docs (``/docs``) and the OpenAPI document (``/openapi.json``): ``protected``
    behind the same auth as the API (with no keys: loopback clients only), ``public`` for
    anyone, ``off`` not served."""
    allow_code_execution: bool = False
    """Keep skills that execute code (``executes_code = True``) reachable over HTTP. Off:
    such skills are removed from the served agent, since any client could run code."""
    webhook: WebhookConfig = WebhookConfig()
    batching: BatchingConfig = BatchingConfig()


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
    tools: ToolsConfig = ToolsConfig()
    """Tools the model may call (``@tool`` functions, entry points, MCP servers)."""
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
