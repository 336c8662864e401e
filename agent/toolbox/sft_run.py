"""One fine-tuning run: encode, measure, train with the Trainer, measure again, save.

Split from :mod:`agent.toolbox.sft` (the configuration and the model loading) to keep
each module to one concept; :func:`agent.toolbox.sft.train_lm` is the entry point.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.toolbox.conversations import Conversation
from agent.toolbox.perplexity import perplexity
from agent.toolbox.precision import TrainPrecision
from agent.toolbox.sft_data import ChatEncoder, collate

__all__ = ["SFTRun"]

log = logging.getLogger(__name__)


class SFTRun:
    """State shared by the steps of one ``train_lm`` call."""

    def __init__(self, cfg: Any, precision: TrainPrecision, model: Any, tokenizer: Any, out: Path) -> None:
        from accelerate import PartialState

        self.cfg = cfg
        self.precision = precision
        self.model = model
        self.tokenizer = tokenizer
        self.out = out
        self.state = PartialState()  # knows the rank under accelerate launch / torchrun
        self.is_main = self.state.is_main_process
        self.train_rows: list[dict[str, list[int]]] = []
        self.eval_rows: list[dict[str, list[int]]] = []
        self.stats: dict[str, Any] = {}

    def encode(self, train: list[Conversation], heldout: list[Conversation]) -> None:
        encoder = ChatEncoder(self.tokenizer, self.cfg.max_length)
        self.train_rows, train_stats = encoder.encode_all(train)
        self.eval_rows, eval_stats = encoder.encode_all(heldout)
        if not self.train_rows:
            raise InputError(f"no conversation in {self.cfg.data} has an assistant reply to learn from "
                             f"within {self.cfg.max_length} tokens: check the roles or raise --max-length")
        self.stats = {"train": vars(train_stats), "heldout": vars(eval_stats)}

    def _perplexity(self, model: Any) -> dict[str, float] | None:
        """Held-out perplexity on the main process; the others wait for it."""
        result = None
        if self.is_main and self.eval_rows:
            result = perplexity(model, self.eval_rows, pad_id=self.tokenizer.pad_token_id,
                                batch_size=self.cfg.batch_size, autocast_dtype=self.precision.autocast_dtype)
        self.state.wait_for_everyone()
        return result

    def _trainer(self, args: Any) -> tuple[Any, Any]:
        from transformers import ProgressCallback, Trainer

        from agent.toolbox.callbacks import ProgressBar, SpeedMeter

        multiple = 8 if self.precision.device == "cuda" else 1  # tensor cores like multiples of 8
        trainer = Trainer(model=self.model, args=args, train_dataset=self.train_rows,
                          eval_dataset=self.eval_rows if self.cfg.eval_steps and self.eval_rows else None,
                          data_collator=functools.partial(collate, pad_id=self.tokenizer.pad_token_id,
                                                          multiple_of=multiple),
                          processing_class=self.tokenizer)
        speed = SpeedMeter()
        trainer.add_callback(speed)
        trainer.remove_callback(ProgressCallback)
        if self.cfg.progress:
            trainer.add_callback(ProgressBar(speed))
        return trainer, speed

    def fit(self, args: Any) -> dict[str, Any]:
        """Train and return the report (perplexities, speed, where things were saved)."""
        from transformers.trainer_utils import get_last_checkpoint

        trainer, speed = self._trainer(args)
        before = self._perplexity(trainer.model)
        checkpoints = Path(args.output_dir)
        resume = get_last_checkpoint(str(checkpoints)) if self.cfg.resume and checkpoints.is_dir() else None
        if resume:
            log.info("resuming from %s", resume)
        result = trainer.train(resume_from_checkpoint=resume)
        after = self._perplexity(trainer.model)
        report: dict[str, Any] = {
            "model": self.cfg.model, "output_dir": str(self.out), "lora": self.cfg.lora,
            "device": self.precision.device, "precision": self.precision.name,
            "world_size": self.state.num_processes, "examples": self.stats,
            "steps": trainer.state.global_step, "resumed_from": resume,
            "train_loss": round(float(result.training_loss), 5),
            "wall_s": round(speed.seconds, 1), "steps_per_s": round(speed.steps_per_s, 4),
            "tokens_per_s": round(speed.tokens_per_s, 1), "tokens_seen": speed.tokens,
            "cpu_s": round(speed.cpu_seconds, 1), "torch_threads": _threads(),
            "perplexity_before": before and before["perplexity"], "perplexity_after": after and after["perplexity"],
            "heldout_tokens": before and before["tokens"], **self.cfg.extra,
        }
        if self.is_main:
            report.update(self._save(trainer, report["perplexity_before"], report["perplexity_after"]))
        self.state.wait_for_everyone()
        return report

    def _save(self, trainer: Any, before: float | None, after: float | None) -> dict[str, Any]:
        from agent.toolbox.callbacks import save_loss_curve

        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        saved: dict[str, Any] = {}
        model = trainer.model
        if self.cfg.lora:
            adapter = self.out / "adapter"
            model.save_pretrained(str(adapter))
            self.tokenizer.save_pretrained(str(adapter))
            _point_adapter_at(adapter, self.cfg.model)
            saved["adapter_dir"] = str(adapter)
            if self.cfg.merge:
                model = model.merge_and_unload()
        if self.cfg.merge or not self.cfg.lora:
            model.config.use_cache = True  # generation wants the KV cache back
            model.save_pretrained(str(self.out))
            self.tokenizer.save_pretrained(str(self.out))
            saved["model_dir"] = str(self.out)
        history = trainer.state.log_history
        (self.out / "log_history.json").write_text(json.dumps(history, indent=1) + "\n")
        curve = save_loss_curve(history, self.out / "loss.png", title=f"llmos train lm: {self.cfg.model}",
                                before=before, after=after)
        saved["loss_curve"] = str(curve) if curve else None
        saved["save_s"] = round(time.perf_counter() - started, 1)
        return saved


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _point_adapter_at(adapter: Path, base: str) -> None:
    """Record the base model as the user named it (a preset or a path), not the cache
    directory it resolved to, so the adapter loads on another machine too."""
    path = adapter / "adapter_config.json"
    data = json.loads(path.read_text())
    data["base_model_name_or_path"] = str(Path(base).resolve()) if Path(base).exists() else base
    path.write_text(json.dumps(data, indent=2) + "\n")
