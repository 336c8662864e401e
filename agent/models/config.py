"""The ``model:`` section of an agent config: which language model answers, and where it runs.

Models layer: the backends and the loader read it; :mod:`agent.config` composes it into
:class:`~agent.config.AgentConfig`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """Which language model answers, and where it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
