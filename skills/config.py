"""Configuration of skills (the ``skills:`` section of an agent config).

::

    skills:
      enabled: [qa, summarize, code, help]
      qa: {mode: combined, min_similarity: 0.3}
      code: {allow_execution: true}          # off by default
      sandbox: {cpu_seconds: 5, memory_mb: 512}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SkillsConfig", "QAConfig", "SummarizeConfig", "CodeConfig", "SandboxConfig", "ToolsConfig",
           "McpServerConfig", "for_http"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QAConfig(_Frozen):
    """Question answering over the knowledge base and the user's memories."""

    mode: Literal["auto", "extractive", "generative", "combined"] = "auto"
    """`extractive`: quote the best-supported span (no model call; robust with tiny models);
    `generative`: the model answers from the passages; `combined`: the model answers, and the
    answer is grounded on a span of the passages, falling back to the extractive span;
    `auto`: extractive for local models under 300M parameters (on SQuAD the 135M default does no
    better combined, and pays a model call; the 0.5B rung doubles its F1 combined), combined
    otherwise."""
    k: int = Field(default=8, ge=1, le=50)
    """Passages retrieved before selection."""
    min_similarity: float = Field(default=0.4, ge=-1.0, le=1.0)
    """Below this cosine similarity (question vs. best passage) the skill says it does not
    know. Calibrated on SQuAD dev with all-MiniLM-L6-v2 (`llmos eval qa` prints the sweep):
    at 0.4, 93% of answerable questions keep an answer and 81% of questions about articles
    not in the knowledge base get "I don't know" (150-question sample); raise it for fewer
    wrong answers."""
    max_passages: int | None = Field(default=None, ge=1, le=20)
    """Passages shown to the model; default: by model size (1 under 0.5B parameters, 2 under
    3B, else 4): small models answer worse from long contexts."""
    extractive_passages: int = Field(default=4, ge=1, le=20)
    """Passages the extractive mode reads, best first. No context limit applies (it quotes a
    span, it does not prompt a model), and sentences of better-retrieved passages are
    preferred; on SQuAD, 4 beat 1 by ~3 F1 (`llmos eval qa`)."""
    include_memories: bool = True
    """Also search the user's own memories (facts and what they said), not only documents."""
    max_answer_tokens: int = Field(default=48, ge=4, le=1024)
    """Reply budget of the generative answer (the citation list is added after it)."""


class SummarizeConfig(_Frozen):
    """Summaries of the session, a knowledge-base document or pasted text."""

    chunk_tokens: int | None = Field(default=None, ge=64)
    """Tokens per chunk of the map step; default: what fits the model's context."""
    max_summary_tokens: int = Field(default=160, ge=16, le=4096)
    """Length budget of each summary (chunk summaries and the final one)."""
    min_chunk_tokens: int = Field(default=64, ge=16)
    """Pasted text shorter than this is echoed back instead of summarised."""


class CodeConfig(_Frozen):
    """Code generation: extract, check syntax and, if allowed, test in the sandbox."""

    allow_execution: bool = False
    """Run generated code (with the user's tests or model-written ones) in the sandbox.
    Off by default: turning it on means running model-written code on this machine."""
    allow_execution_over_http: bool = False
    """Let callers of `llmos serve` run code too (needs `allow_execution` as well). The server
    turns execution off unless the operator sets this."""
    write_tests: bool = True
    """When the user gave no tests and execution is on, ask the model for a few asserts."""
    retries: int = Field(default=1, ge=0, le=3)
    """Further attempts, each shown the previous error (syntax error or failing test)."""
    max_code_tokens: int = Field(default=384, ge=16, le=8192)
    """Reply budget of the code generation call."""


class SandboxConfig(_Frozen):
    """Limits of the process that runs untrusted code (see `skills.sandbox`)."""

    cpu_seconds: int = Field(default=5, ge=1, le=3600)
    """CPU time limit (RLIMIT_CPU)."""
    wall_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Wall-clock limit; the whole process tree is killed after it."""
    memory_mb: int = Field(default=512, ge=64)
    """Address-space limit of each process (RLIMIT_AS)."""
    max_processes: int = Field(default=16, ge=1, le=4096)
    """Processes the sandbox user may have (RLIMIT_NPROC): stops fork bombs."""
    file_size_mb: int = Field(default=8, ge=1)
    """Largest file a program may write (RLIMIT_FSIZE)."""
    max_open_files: int = Field(default=64, ge=16)
    """Open file descriptors (RLIMIT_NOFILE)."""
    scratch_mb: int = Field(default=64, ge=8)
    """Size of the sandbox's own filesystem (a tmpfs holding /work and /tmp)."""
    output_bytes: int = Field(default=64_000, ge=1024)
    """Most stdout (and, separately, stderr) kept; a program printing more is stopped."""
    uid: int = Field(default=65534, ge=1)
    """The unprivileged user the program runs as when llmos runs as root (default: nobody)."""
    python: str | None = None
    """Interpreter for the program (default: the one running llmos, outside its venv)."""


class SkillsConfig(_Frozen):
    """Which skills load, and each built-in skill's settings."""

    enabled: tuple[str, ...] | None = None
    """Skill names to load (None: every installed skill, built-ins and plugins)."""
    qa: QAConfig = QAConfig()
    summarize: SummarizeConfig = SummarizeConfig()
    code: CodeConfig = CodeConfig()
    sandbox: SandboxConfig = SandboxConfig()


class McpServerConfig(_Frozen):
    """One MCP server whose tools become the agent's: started as a subprocess speaking stdio
    (``command``), or reached over streamable HTTP (``url``)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    """A label for logs and errors."""
    command: tuple[str, ...] | None = None
    """The program and its arguments, e.g. ``[python, -m, my_server]`` (stdio)."""
    url: str | None = Field(default=None, pattern=r"^https?://")
    """The server's streamable-HTTP endpoint, e.g. ``http://127.0.0.1:8931/mcp``."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for a stdio server."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds to connect, and for each call (the tool's own timeout is ``tools.timeout_s``)."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio server) or url (streamable HTTP), not both")
        if self.command is not None and not self.command:
            raise ValueError("command needs at least the program to run")
        return self


class ToolsConfig(_Frozen):
    """Tools the model may call during a turn (the ``tools:`` section of an agent config)."""

    enabled: tuple[str, ...] = ()
    """Entry points of the ``llmos.tools`` group by name, or import paths ``module:function``."""
    mcp: tuple[McpServerConfig, ...] = ()
    """MCP servers whose tools join these."""
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    """Most seconds one call may run; a slower call becomes an error result the model reads."""
    max_rounds: int = Field(default=3, ge=1, le=16)
    """Most rounds of calls in one turn (a round: the model calls, the tools answer); the
    model then answers from what it has."""
    parallel: bool = True
    """Let the model make several calls in one round."""
    call_max_tokens: int = Field(default=160, ge=16, le=4096)
    """Token cap of a round whose reply must be a call (an intent routed to a tool): at
    least this many, whatever ``generation.max_new_tokens`` says, since the call's JSON is
    closed early when the cap nears and a value cut short is a wrong call (a 64-token cap made
    the 135M call ``order_status(order_id=1)`` for "order 1234")."""


def for_http(config: SkillsConfig) -> SkillsConfig:
    """The skills config for callers of the HTTP server: code execution stays off unless
    the operator set both ``code.allow_execution`` and ``code.allow_execution_over_http``."""
    code = config.code
    allowed = code.allow_execution and code.allow_execution_over_http
    return config.model_copy(update={"code": code.model_copy(update={"allow_execution": allowed})})
