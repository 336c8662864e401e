"""Trainer callbacks: a progress bar with loss and tokens/s, and the loss-curve image."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = ["ProgressBar", "SpeedMeter", "save_loss_curve"]


class SpeedMeter(TrainerCallback):
    """Wall time, steps/s and tokens/s of this session's training (resumed steps excluded).

    Also the process's CPU seconds: on a shared machine the wall time says how busy the
    neighbours were, the CPU time what the training itself cost.
    """

    def __init__(self) -> None:
        self.started = 0.0
        self.cpu_started = 0.0
        self.cpu_seconds = 0.0
        self.first_step = 0
        self.first_tokens = 0
        self.steps = 0
        self.tokens = 0
        self.seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        self.first_step = state.global_step
        self.first_tokens = state.num_input_tokens_seen

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        self.steps = state.global_step - self.first_step
        self.tokens = state.num_input_tokens_seen - self.first_tokens

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


class ProgressBar(TrainerCallback):
    """A tqdm bar on stderr (main process only) whose postfix shows the loss and tokens/s."""

    def __init__(self, speed: SpeedMeter) -> None:
        self.speed = speed
        self.bar: Any = None
        self.loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            from tqdm import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step",
                            file=sys.stderr, dynamic_ncols=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self._postfix()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is None:
            return
        parts = {"tok/s": f"{self.speed.tokens_per_s:.0f}"}
        if self.loss is not None:
            parts = {"loss": f"{self.loss:.3f}", **parts}
        self.bar.set_postfix(parts, refresh=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def save_loss_curve(log_history: list[dict[str, Any]], path: Path, *, title: str = "",
                    before: float | None = None, after: float | None = None) -> Path | None:
    """Plot training (and evaluation) loss against the step into a PNG; None when nothing was logged."""
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; never open a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), marker="." if len(train) < 30 else None, label="training loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    if before is not None and after is not None:
        title = f"{title}\nheld-out perplexity {before:.2f} -> {after:.2f}".strip()
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
