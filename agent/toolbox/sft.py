"""Supervised fine-tuning of a chat model on conversations (``llmos train lm``).

Built on transformers' ``Trainer`` and peft: LoRA adapters by default (full fine-tuning
on request), the loss on assistant tokens only, bf16 mixed precision where the hardware
has it, gradient accumulation, checkpoints that resume, and the held-out perplexity
before and after. The same code runs single-process (what CI tests) and under
``accelerate launch`` / ``torchrun`` for several GPUs or nodes: the Trainer reads the
distributed environment itself; evaluation and saving happen on the main process.

The output directory holds the merged model (a plain transformers directory that
``load_model(DIR)`` and an agent config load), the LoRA adapter in ``adapter/``,
``checkpoints/``, ``train_report.json`` and ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InputError, ModelError
from agent.models.presets import DEFAULT_MODEL
from agent.toolbox.conversations import Conversation, read_conversations, split_heldout
from agent.toolbox.precision import TrainPrecision, resolve_precision

__all__ = ["TrainConfig", "train_lm", "load_for_training"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one fine-tuning run needs. Only ``data`` is required."""

    data: str | Path
    """JSONL conversations (OpenAI messages format)."""
    model: str = DEFAULT_MODEL
    """Base model: a preset, a directory, a .gguf file or a cached Hugging Face id."""
    output_dir: str | Path = "llmos-finetuned"
    lora: bool = True
    """LoRA adapters through peft; False fine-tunes every weight."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    """Comma-separated module names, or ``all-linear`` (every linear layer but the output head)."""
    epochs: float = 1.0
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides ``epochs``)."""
    learning_rate: float | None = None
    """Default: 2e-4 with LoRA, 2e-5 for full fine-tuning."""
    batch_size: int = 4
    """Conversations per device per forward pass."""
    grad_accum: int = 2
    """Forward passes per optimizer step (effective batch = batch_size x grad_accum x devices)."""
    max_length: int = 512
    """Conversations are cut to this many tokens."""
    eval_data: str | Path | None = None
    """Held-out conversations; default: ``eval_fraction`` of ``data``."""
    eval_fraction: float = 0.1
    max_eval: int | None = 200
    """At most this many held-out conversations (perplexity before and after costs time)."""
    eval_steps: int | None = None
    """Also measure the held-out loss every N steps (for the loss curve)."""
    save_steps: int = 50
    resume: bool = True
    """Continue from the newest checkpoint in ``output_dir/checkpoints`` when there is one."""
    limit: int | None = None
    """Use only the first N conversations of ``data``."""
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    """``auto`` (bf16 on GPUs and CPUs that support it, else fp16 on older GPUs, else fp32), bf16, fp16, fp32."""
    gradient_checkpointing: bool = False
    threads: int | None = None
    """CPU threads for torch (default: torch's choice, one per core). On a shared, busy CPU
    one thread can be several times faster: idle OpenMP threads spin waiting for their
    descheduled peers."""
    merge: bool = True
    """Save the merged model in ``output_dir`` (else only the adapter in ``output_dir/adapter``)."""
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    """Recorded in the report (e.g. the teacher of a distillation run)."""


def load_for_training(name: str, precision: TrainPrecision, lora: bool) -> tuple[Any, Any]:
    """The base model and tokenizer, read with transformers from wherever ``name`` resolves."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from agent.models.loader import resolve_source

    source = resolve_source(name)
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelError(f"model {name!r} is not available offline ({exc.__class__.__name__}): pass a local "
                         "model directory or a preset from `llmos models`") from None
    if getattr(config, "is_encoder_decoder", False):
        raise ModelError(f"{name} is an encoder-decoder model; `llmos train lm` fine-tunes decoder-only chat "
                         "models (Llama, Qwen, Mistral, GPT-2, ...)")
    model = AutoModelForCausalLM.from_pretrained(source, dtype=precision.weights_dtype(lora), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.use_cache = False  # no KV cache while training: it only costs memory
    return model, tokenizer


def _with_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = cfg.lora_targets
    if targets != "all-linear":
        targets = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise ModelError(f"cannot attach LoRA to {type(model).__name__}: {exc}. Name the linear layers with "
                         "--lora-targets (e.g. q_proj,v_proj)") from exc


def _splits(cfg: TrainConfig) -> tuple[list[Conversation], list[Conversation]]:
    conversations = read_conversations(cfg.data, cfg.limit)
    if cfg.eval_data:
        heldout = read_conversations(cfg.eval_data)
        return conversations, heldout[: cfg.max_eval] if cfg.max_eval else heldout
    return split_heldout(conversations, cfg.eval_fraction, cfg.seed, cfg.max_eval)


def _arguments(cfg: TrainConfig, precision: TrainPrecision, train_rows: int, checkpoints: Path) -> Any:
    from transformers import TrainingArguments

    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = max(1, -(-train_rows // (cfg.batch_size * cfg.grad_accum * world)))
    total = cfg.max_steps or max(1, int(per_epoch * cfg.epochs))
    lr = cfg.learning_rate or (2e-4 if cfg.lora else 2e-5)
    return TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, learning_rate=lr,
        lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.0,
        bf16=precision.bf16, fp16=precision.fp16, use_cpu=precision.device == "cpu",
        activation_checkpointing=cfg.gradient_checkpointing,
        logging_steps=max(1, total // 40), logging_first_step=True,
        eval_strategy="steps" if cfg.eval_steps else "no", eval_steps=cfg.eval_steps, prediction_loss_only=True,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        # Batches of similar length waste less compute on padding (most of it on CPU).
        train_sampling_strategy="group_by_length", include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0, remove_unused_columns=False, report_to="none", seed=cfg.seed,
        disable_tqdm=False, ddp_find_unused_parameters=False if world > 1 else None,
    )


def train_lm(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune ``cfg.model`` on ``cfg.data``; return the report (also written to ``train_report.json``)."""
    from agent.toolbox.sft_run import SFTRun

    started = time.perf_counter()
    out = Path(cfg.output_dir).expanduser()
    precision = resolve_precision(cfg.device, cfg.precision)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    train, heldout = _splits(cfg)
    if not train:
        raise InputError(f"{cfg.data} leaves no conversation to train on after the held-out split")
    model, tokenizer = load_for_training(cfg.model, precision, cfg.lora)
    run = SFTRun(cfg, precision, model, tokenizer, out)
    run.encode(train, heldout)
    checkpoints = out / "checkpoints"
    if not cfg.resume and checkpoints.exists() and run.is_main:
        shutil.rmtree(checkpoints)
    if cfg.lora:
        run.model = _with_lora(model, cfg)
    report = run.fit(_arguments(cfg, precision, len(run.train_rows), checkpoints))
    report["total_wall_s"] = round(time.perf_counter() - started, 1)
    report["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    if run.is_main:
        (out / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
