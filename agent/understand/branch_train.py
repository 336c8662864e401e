"""Training the sentiment branch (:mod:`agent.understand.branch`) on a CPU.

The encoder's lower layers are frozen, so their output is computed once per distinct text
and kept (:class:`TokenCache`: the real tokens only, float16, with offsets); each epoch
then runs only the ``k`` branch layers forward and backward. Batches are made of texts of
similar length (little padding) and visited in a random order; padding is masked in the
attention and in the pooling.

Cross-entropy, AdamW, a linear warm-up then linear decay, BERT's dropout (0.1); the
branch layers start from the encoder's own top layers and the linear classifier from zero.
A stratified share of the distinct texts is held out to fit the temperature, so the
signed score's neutral band means the same as for the frozen head.

Training can also go on from a saved branch (its layers as ``init``, its linear layer as
``head_init``; ``llmos train sentiment --branch-init DIR``): one epoch over new data at a
lower rate costs minutes where three epochs from the encoder's layers cost most of an hour.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agent.models.minilm import LayerStates, LeanBert
from agent.understand.branch import SentimentBranch, branch_module, layers_from_module
from agent.understand.head import fit_temperature

__all__ = ["BranchSpec", "TokenCache", "build_token_cache", "train_branch", "holdout_by_text"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class BranchSpec:
    """How to train a branch."""

    depth: int = 3
    """Top encoder layers the branch re-trains (1..all)."""
    epochs: int = 3
    lr: float = 1e-4
    """Peak learning rate of the branch layers."""
    head_lr: float = 2e-3
    """Peak learning rate of the new linear classifier."""
    batch_size: int = 32
    weight_decay: float = 0.01
    dropout: float = 0.1
    warmup: float = 0.06
    """Share of the steps spent warming the learning rate up from 0."""
    holdout: float = 0.05
    """Share of the distinct texts held out to fit the temperature (0: no calibration)."""
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TokenCache:
    """The token states of one encoder layer for many texts: ``states`` ``(tokens, hidden)``
    float16, text ``i``'s rows are ``offsets[i]:offsets[i+1]``."""

    def __init__(self, states: np.ndarray, offsets: np.ndarray) -> None:
        self.states = states
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, rows: Sequence[int]) -> LayerStates:
        """The padded float32 states and 0/1 mask of ``rows``."""
        import torch

        lengths = self.lengths[np.asarray(rows)]
        width = int(lengths.max())
        out = np.zeros((len(rows), width, self.states.shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, (row, n) in enumerate(zip(rows, lengths, strict=True)):
            out[i, :n] = self.states[self.offsets[row]:self.offsets[row + 1]]
            mask[i, :n] = 1
        return LayerStates(torch.from_numpy(out), torch.from_numpy(mask))


def build_token_cache(encoder: LeanBert, texts: Sequence[str], tap: int, *, batch_size: int = 128,
                      progress: Progress | None = None) -> tuple[TokenCache, np.ndarray]:
    """Run the frozen layers ``1..tap`` over ``texts`` (longest-similar batches) and keep
    layer ``tap``'s states; also returns the turn embeddings (the full encoder's pooled,
    normalised vectors), which cost the ``k`` layers more."""
    import torch
    import torch.nn.functional as F

    from agent.models.minilm import mean_pool

    lengths = np.array([len(e.ids) for e in encoder.tokenizer.encode_batch(list(texts))], dtype=np.int64)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    states = np.zeros((int(offsets[-1]), encoder.hidden), dtype=np.float16)
    vectors = np.zeros((len(texts), encoder.hidden), dtype=np.float32)
    order = np.argsort(lengths, kind="stable")
    for begin in range(0, len(texts), batch_size):
        rows = order[begin:begin + batch_size]
        ids, mask = encoder.tokenize([texts[i] for i in rows])
        with torch.inference_mode():
            last, kept = encoder.forward(ids, mask, keep=tap)
            vectors[rows] = F.normalize(mean_pool(last, mask), dim=1).numpy()
        assert kept is not None
        tapped = kept.states.numpy()
        for j, row in enumerate(rows):
            states[offsets[row]:offsets[row + 1]] = tapped[j, :lengths[row]]
        if progress is not None:
            done = min(len(texts), begin + batch_size)
            progress(done / len(texts), f"encoded {done}/{len(texts)} texts")
    return TokenCache(states, offsets), vectors


def holdout_by_text(rows: np.ndarray, targets: np.ndarray, fraction: float,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Example indices to train on and to hold out; all copies of a text (an upweighted
    example appears several times) land on the same side, ``fraction`` of each class."""
    rng = np.random.default_rng(seed)
    held_rows: set[int] = set()
    for label in np.unique(targets):
        distinct = np.unique(rows[targets == label])
        n = int(len(distinct) * fraction) if len(distinct) >= 20 else 0
        held_rows.update(rng.choice(distinct, size=n, replace=False).tolist())
    held = np.array([r in held_rows for r in rows.tolist()])
    return np.flatnonzero(~held), np.flatnonzero(held)


def _batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Example indices grouped by similar length (a little noise so batches vary between
    epochs), in random order."""
    noisy = lengths + rng.uniform(0, 2, size=len(lengths))
    order = np.argsort(noisy, kind="stable")
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)  # type: ignore[arg-type]
    return groups


def _schedule(step: int, total: int, warmup: float) -> float:
    ramp = max(1, int(total * warmup))
    if step < ramp:
        return (step + 1) / ramp
    return max(0.0, (total - step) / max(1, total - ramp))


def train_branch(cache: TokenCache, rows: np.ndarray, targets: np.ndarray, n_classes: int,
                 init: Sequence[dict[str, np.ndarray]], *, heads: int, eps: float, tap: int,
                 spec: BranchSpec = BranchSpec(), progress: Progress | None = None,
                 on_epoch: Callable[[int, SentimentBranch], None] | None = None,
                 head_init: tuple[np.ndarray, np.ndarray] | None = None,
                 ) -> tuple[SentimentBranch, dict[str, Any]]:
    """Train a branch on examples ``rows`` (indices into ``cache``) with ``targets``;
    returns it and the training figures (seconds, CPU seconds, held-out accuracy).
    ``on_epoch(epoch, branch)`` sees the branch after each epoch (for learning curves).
    ``init`` are the starting layers (the encoder's own, or a trained branch's to go on
    training it); ``head_init`` the linear layer's starting weight and bias (default: zero).

    Runs on one torch thread: a batch is a few hundred tokens, and a second thread cost
    3.7x the CPU time on a busy 2-core machine (spin-waiting) for no gain in wall time."""
    from agent.models.fastquant import intra_op_threads

    with intra_op_threads(1):
        return _train(cache, rows, targets, n_classes, init, heads, eps, tap, spec, progress, on_epoch, head_init)


def _train(cache: TokenCache, rows: np.ndarray, targets: np.ndarray, n_classes: int,
           init: Sequence[dict[str, np.ndarray]], heads: int, eps: float, tap: int, spec: BranchSpec,
           progress: Progress | None, on_epoch: Callable[[int, SentimentBranch], None] | None,
           head_init: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[SentimentBranch, dict[str, Any]]:
    import torch

    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    rows, targets = np.asarray(rows, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    fit, held = holdout_by_text(rows, targets, spec.holdout, spec.seed) if spec.holdout > 0 else (
        np.arange(len(rows)), np.zeros(0, dtype=np.int64))
    module = branch_module(init, n_classes, heads, eps, spec.dropout)
    with torch.no_grad():
        if head_init is None:
            module.head.weight.zero_()
            module.head.bias.zero_()
        else:
            module.head.weight.copy_(torch.from_numpy(np.asarray(head_init[0], dtype=np.float32)))
            module.head.bias.copy_(torch.from_numpy(np.asarray(head_init[1], dtype=np.float32)))
    groups = [{"params": [p for n, p in module.named_parameters() if not n.startswith("head.")], "lr": spec.lr},
              {"params": list(module.head.parameters()), "lr": spec.head_lr}]
    optimizer = torch.optim.AdamW(groups, weight_decay=spec.weight_decay)
    peaks = [g["lr"] for g in optimizer.param_groups]
    lengths = cache.lengths[rows[fit]]
    steps_per_epoch = math.ceil(len(fit) / spec.batch_size)
    total = spec.epochs * steps_per_epoch
    loss_fn = torch.nn.CrossEntropyLoss()
    start, start_cpu = time.perf_counter(), time.process_time()
    step = 0
    module.train()
    for epoch in range(spec.epochs):
        running = 0.0
        for i, group in enumerate(_batches(lengths, spec.batch_size, rng)):
            examples = fit[group]
            states = cache.batch(rows[examples].tolist())
            for g, peak in zip(optimizer.param_groups, peaks, strict=True):
                g["lr"] = peak * _schedule(step, total, spec.warmup)
            loss = loss_fn(module(states.states, states.mask), torch.from_numpy(targets[examples]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            running += float(loss.detach())
            if progress is not None and (i + 1) % 50 == 0:
                progress(step / total, f"epoch {epoch + 1}/{spec.epochs}, loss {running / (i + 1):.3f}")
        log.info("branch epoch %d: loss %.4f", epoch + 1, running / steps_per_epoch)
        if on_epoch is not None and epoch + 1 < spec.epochs:
            on_epoch(epoch + 1, _snapshot(module, tap, heads, eps))
    module.eval()
    branch = _snapshot(module, tap, heads, eps)
    if on_epoch is not None:
        on_epoch(spec.epochs, branch)
    figures: dict[str, Any] = {"train_seconds": round(time.perf_counter() - start, 1),
                               "train_cpu_seconds": round(time.process_time() - start_cpu, 1),
                               "examples": int(len(fit)), "heldout": int(len(held)), "spec": spec.to_json()}
    if len(held):
        logits = branch_logits(branch, cache, rows[held])
        branch.temperature = fit_temperature(logits, targets[held])
        figures["heldout_accuracy"] = round(float((logits.argmax(1) == targets[held]).mean()), 4)
        figures["temperature"] = round(branch.temperature, 4)
    return branch, figures


def _snapshot(module: Any, tap: int, heads: int, eps: float) -> SentimentBranch:
    return SentimentBranch(tap, heads, layers_from_module(module), module.head.weight.detach().numpy().copy(),
                           module.head.bias.detach().numpy().copy(), eps)


def branch_logits(branch: SentimentBranch, cache: TokenCache, rows: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Uncalibrated logits of ``branch`` for cached ``rows`` (similar lengths batched)."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros((len(rows), branch.weight.shape[0]), dtype=np.float32)
    order = np.argsort(cache.lengths[rows], kind="stable")
    for begin in range(0, len(rows), batch_size):
        part = order[begin:begin + batch_size]
        out[part] = branch.logits(cache.batch(rows[part].tolist()))
    return out
