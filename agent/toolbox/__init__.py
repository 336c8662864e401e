"""The model toolbox: make a model yours with transformers, peft and accelerate.

- data: conversations as OpenAI-format JSONL (:mod:`.conversations`), cleaning with
  PII masking and near-duplicate removal (:mod:`.clean`), the chitchat corpus
  (:mod:`.chitchat`), exports of the conversation store (:mod:`.export`);
- fine-tuning with the loss on assistant tokens (:mod:`.sft`), distillation from a
  teacher (:mod:`.distill`), LoRA adapter directories (:mod:`.adapters`);
- evaluation (:mod:`.eval_lm`) and quantization side by side (:mod:`.quantbench`).

Names load on first use, so importing the package pulls in neither torch nor transformers.
"""

from __future__ import annotations

from agent.lazy import lazy_getattr

__all__ = [
    "TrainConfig",
    "train_lm",
    "generate_teacher_data",
    "evaluate_lm",
    "perplexity",
    "bench_quantization",
    "resolve_adapter_dir",
    "CleanOptions",
    "CleanReport",
    "clean_conversations",
    "mask_pii",
    "read_conversations",
    "write_conversations",
    "chitchat_conversations",
    "export_store",
]

_LAZY = {
    "TrainConfig": "agent.toolbox.sft",
    "train_lm": "agent.toolbox.sft",
    "generate_teacher_data": "agent.toolbox.distill",
    "evaluate_lm": "agent.toolbox.eval_lm",
    "perplexity": "agent.toolbox.perplexity",
    "bench_quantization": "agent.toolbox.quantbench",
    "resolve_adapter_dir": "agent.models.loader",
    "CleanOptions": "agent.toolbox.clean",
    "CleanReport": "agent.toolbox.clean",
    "clean_conversations": "agent.toolbox.clean",
    "mask_pii": "agent.toolbox.pii",
    "read_conversations": "agent.toolbox.conversations",
    "write_conversations": "agent.toolbox.conversations",
    "chitchat_conversations": "agent.toolbox.chitchat",
    "export_store": "agent.toolbox.export",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
