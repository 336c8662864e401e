"""Continuous batching on the fast decoder's packed weights: many sequences, one product a step.

A decode step of a small model on a CPU is bound by reading the weights (and, at one
sequence, by op dispatch), so a step that feeds 8 sequences costs little more than a step
that feeds one. :class:`SlotDecoder` keeps the key/value caches of the running sequences
side by side and runs every decode step of all of them through
:meth:`~agent.models.fastpath.FastDecoder.decode_rows` (the int8/int4 kernels over all rows
at once, attention batched over the rows with each row's tail masked).

- **Rows.** Running sequences occupy rows ``0..B-1`` of one ``(layers, rows, kv heads,
  capacity, head_dim)`` key tensor and one value tensor; a sequence that ends hands its
  row to the last one (one copy of that sequence's positions), so the live rows stay packed
  and a step never gathers. Rows and capacity grow in steps, and shrink back when the batch
  empties.
- **Newcomers** prefill into a cache of their own (:class:`Pending`), in chunks of
  whatever budget the scheduler gives between two decode steps, so running streams keep
  flowing; when the prompt is done its cache is copied into the next free row.
- **Prefix cache.** A finished sequence's keys and values are kept (least recently used
  first out, ``prefix_cache_mb`` in all), keyed by its token ids. A newcomer starts from
  the longest common prefix among those and the running sequences, so the next turn of a
  conversation, or requests sharing a system prompt, only prefill what is new.
  A prefix's keys and values are those its own prefill computed, so a prompt prefilled
  in two parts can differ in the last bits from one prefilled at once (long chunks multiply
  in int8 or fp32, short ones in the decode kernels), as in the single-stream decoder, which
  reuses its cache the same way. ``prefix_cache_mb=0`` turns reuse off.
- **Memory cap.** ``kv_limit_mb`` bounds the batch's key/value memory: a newcomer that
  would pass it waits (:meth:`fits`) until a sequence ends.

Not thread-safe: one scheduler thread drives it (:mod:`agent.backends.fastbatching`). It
shares the decoder's weights and never touches the decoder's own cache, so the decoder can
still serve single-stream calls in between.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError
from agent.models.fastpath import _common_prefix
from agent.models.fastquant import StepThreads, intra_op_threads

if TYPE_CHECKING:
    import torch

    from agent.models.fastpath import FastDecoder

__all__ = ["SlotDecoder", "Pending", "Running"]

_STEP = 256  # capacity grows in these many positions
_ROW_STEP = 4  # rows grow in these many
_MIN_PREFIX = 16  # shorter shared prefixes are recomputed (a copy costs more than it saves)


class Pending:
    """A sequence being prefilled: its own cache until its prompt is done."""

    def __init__(self, ids: list[int], done: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.ids = ids
        self.done = done
        """Prompt tokens whose keys and values the cache holds (from a prefix, then chunks)."""
        self.reused = done
        """Of those, how many came from the prefix cache."""
        self.k, self.v = k, v  # (layers, kv heads, capacity, head_dim)

    @property
    def left(self) -> int:
        return len(self.ids) - self.done


class Running:
    """A sequence in the batch: its row and the tokens whose keys and values the row holds."""

    def __init__(self, row: int, ids: list[int]) -> None:
        self.row = row
        self.ids = ids


class SlotDecoder:
    """Continuous batching over ``fast``'s weights (see the module docstring)."""

    def __init__(self, fast: FastDecoder, *, kv_limit_mb: float = 2048.0, prefix_cache_mb: float = 256.0) -> None:
        self.fast = fast
        self.layers = len(fast.packed_layers)
        self.token_bytes = 2 * self.layers * fast.n_kv * fast.head_dim * 4  # fp32 keys + values
        self.kv_limit = int(kv_limit_mb * 2**20)
        self.prefix_limit = int(prefix_cache_mb * 2**20)
        self.running: list[Running] = []
        self._k: torch.Tensor | None = None  # (layers, rows, kv, capacity, head_dim)
        self._v: torch.Tensor | None = None
        self._rotations = fast.rotations(min(fast.max_seq_len, _STEP))
        self._prefixes: OrderedDict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._prefix_bytes = 0
        self._chooser: StepThreads | None = None
        self._views: list[tuple[torch.Tensor, ...]] = []
        self._views_of: torch.Tensor | None = None  # the key tensor _views were made of
        self.reused_tokens = 0
        """Prompt tokens taken from the prefix cache so far (instead of prefilled)."""

    # -- memory --------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return 0 if self._k is None else int(self._k.shape[3])

    @property
    def kv_bytes(self) -> int:
        """Bytes the batch's key/value tensors hold now."""
        return 0 if self._k is None else 2 * self._k.numel() * 4

    def fits(self, prompt_tokens: int, new_tokens: int, *, joining: int = 0) -> bool:
        """Whether one more sequence of this size fits under ``kv_limit_mb`` beside the
        running ones and ``joining`` others still prefilling (all rows are as long as the
        longest: at least ``prompt_tokens + new_tokens``). An empty batch always takes one
        (a single sequence is bounded by the context)."""
        rows = len(self.running) + joining
        if not rows:
            return True
        longest = max(prompt_tokens + new_tokens, self.capacity)
        return (rows + 1) * longest * self.token_bytes <= self.kv_limit

    def _ensure(self, rows: int, positions: int) -> None:
        """Make the batch tensors hold ``rows`` rows of ``positions`` positions, keeping the
        running rows' contents."""
        import torch

        if positions > self.fast.max_seq_len:
            raise ModelError(f"a sequence needs {positions} positions but the decoder holds at most "
                             f"{self.fast.max_seq_len}; trim the history or raise max_seq_len")
        have_rows = 0 if self._k is None else int(self._k.shape[1])
        if rows <= have_rows and positions <= self.capacity:
            return
        new_rows = max(have_rows, -(-rows // _ROW_STEP) * _ROW_STEP)
        cap = max(self.capacity, min(self.fast.max_seq_len, -(-positions // _STEP) * _STEP))
        shape = (self.layers, new_rows, self.fast.n_kv, cap, self.fast.head_dim)
        # zeros, not empty: a step reads every row up to the longest one, and its mask only
        # zeroes the weights of the tail (0 * a NaN left in free memory would still be NaN)
        k, v = torch.zeros(shape), torch.zeros(shape)
        if self._k is not None and self.running:
            live, held = len(self.running), max(len(r.ids) for r in self.running)
            k[:, :live, :, :held] = self._k[:, :live, :, :held]
            v[:, :live, :, :held] = self._v[:, :live, :, :held]  # type: ignore[index]
        self._k, self._v = k, v
        if self._rotations.shape[0] < cap:
            self._rotations = self.fast.rotations(cap)

    # -- newcomers -----------------------------------------------------------------------------

    def start(self, ids: list[int]) -> Pending:
        """A new sequence for prompt ``ids``, starting from the longest cached prefix."""
        import torch

        if not ids:
            raise ModelError("input_ids is empty; pass at least one token (e.g. the BOS token)")
        size = -(-len(ids) // _STEP) * _STEP
        if size > self.fast.max_seq_len:
            size = len(ids)
        if len(ids) > self.fast.max_seq_len:
            raise ModelError(f"the prompt has {len(ids)} tokens but this decoder holds at most "
                             f"{self.fast.max_seq_len}; trim the history or raise max_seq_len")
        shape = (self.layers, self.fast.n_kv, size, self.fast.head_dim)
        k, v = torch.empty(shape), torch.empty(shape)
        done = 0
        source = self._longest_prefix(ids)
        if source is not None:
            done, sk, sv = source
            k[:, :, :done] = sk[:, :, :done]
            v[:, :, :done] = sv[:, :, :done]
            self.reused_tokens += done
        return Pending(list(ids), done, k, v)

    def _longest_prefix(self, ids: list[int]) -> tuple[int, torch.Tensor, torch.Tensor] | None:
        """(length, keys, values) of the longest usable prefix of ``ids`` held anywhere: a
        finished sequence's cache or a running row. At most ``len(ids) - 1`` tokens (the
        last prompt token is always computed, for its logits)."""
        if self.prefix_limit <= 0:  # prefix reuse is off
            return None
        best: tuple[int, Any, Any] | None = None
        best_key: tuple[int, ...] | None = None
        for key, (k, v) in self._prefixes.items():
            n = _common_prefix(key, ids)
            if n >= _MIN_PREFIX and (best is None or n > best[0]):
                best, best_key = (n, k, v), key
        assert self._k is None or self._v is not None
        for seq in self.running:
            n = _common_prefix(seq.ids, ids)
            if n >= _MIN_PREFIX and (best is None or n > best[0]):
                best, best_key = (n, self._k[:, seq.row], self._v[:, seq.row]), None  # type: ignore[index]
        if best is None:
            return None
        if best_key is not None:
            self._prefixes.move_to_end(best_key)
        n = min(best[0], len(ids) - 1)
        return (n, best[1], best[2]) if n >= _MIN_PREFIX else None

    def prefill(self, seq: Pending, budget: int) -> torch.Tensor | None:
        """Prefill up to ``budget`` more prompt tokens of ``seq``; returns the logits after
        its last prompt token once the prompt is done, else None."""
        import torch

        n = min(max(1, budget), seq.left)
        hi = seq.done + n
        if self._rotations.shape[0] < seq.k.shape[2]:
            self._rotations = self.fast.rotations(seq.k.shape[2])
        views = [(seq.k[i].transpose(1, 2), seq.v[i], seq.k[i], seq.v[i]) for i in range(self.layers)]
        with torch.inference_mode(), intra_op_threads(self.fast.thread_count()):
            logits = self.fast.prefill_rows(seq.ids[seq.done:hi], seq.done, views, self._rotations)
        seq.done = hi
        return logits if seq.left == 0 else None

    def join(self, seq: Pending, room: int) -> Running:
        """Move a prefilled ``seq`` into the next free row, with room for ``room`` more tokens."""
        if seq.left:
            raise ModelError("join() needs a prefilled sequence; call prefill() until it returns logits")
        row = len(self.running)
        n = len(seq.ids)
        self._ensure(row + 1, n + room)
        assert self._k is not None and self._v is not None
        self._k[:, row, :, :n] = seq.k[:, :, :n]
        self._v[:, row, :, :n] = seq.v[:, :, :n]
        running = Running(row, seq.ids)
        self.running.append(running)
        return running

    # -- the batch -----------------------------------------------------------------------------

    def step(self, tokens: Sequence[int]) -> torch.Tensor:
        """Feed ``tokens[b]`` to ``running[b]`` (row order); returns fp32 logits ``(B, vocab)``."""
        import torch

        if len(tokens) != len(self.running) or not tokens:
            raise ModelError(f"step() takes one token per running sequence ({len(self.running)}), got {len(tokens)}")
        positions = [len(seq.ids) for seq in self.running]
        self._ensure(len(self.running), max(positions) + 1)
        assert self._k is not None and self._v is not None
        if [seq.row for seq in self.running] != list(range(len(self.running))):
            raise ModelError("the running sequences are out of row order")  # a bookkeeping bug, never user input
        b = len(self.running)
        chooser = self._step_threads()
        threads = self.fast.thread_count() if chooser is None else chooser.next()
        began = time.perf_counter()
        with torch.inference_mode(), intra_op_threads(threads):
            if b == 1:  # one stream: the decoder's own step on row 0, no batch gathers or masks
                logits = self.fast.decode_one(int(tokens[0]), positions[0], self._row0_views(),
                                              self._rotations)[None]
            else:
                logits = self.fast.decode_rows(torch.tensor(list(tokens)), torch.tensor(positions),
                                               [self._k[i, :b] for i in range(self.layers)],
                                               [self._v[i, :b] for i in range(self.layers)], self._rotations)
        if chooser is not None:
            chooser.record(time.perf_counter() - began)
        for seq, token in zip(self.running, tokens, strict=True):
            seq.ids.append(int(token))
        return logits

    def _row0_views(self) -> list[tuple[torch.Tensor, ...]]:
        """Row 0's per-layer ``(K^T, V, K, V)`` views, kept until the tensors are replaced."""
        assert self._k is not None and self._v is not None
        if self._views_of is not self._k:
            self._views = [(self._k[i, 0].transpose(1, 2), self._v[i, 0], self._k[i, 0], self._v[i, 0])
                           for i in range(self.layers)]
            self._views_of = self._k
        return self._views

    def _step_threads(self) -> StepThreads | None:
        """With the decoder's ``threads="auto"`` and several intra-op threads: a chooser of
        the steps' thread count by their timings (as the decoder's own steps have; a batch
        step is a few hundred parallel regions too, and on a shared machine a second thread
        that gets descheduled stalls every one of them)."""
        import torch

        if self.fast.threads != "auto" or torch.get_num_threads() < 2:
            return None
        many = torch.get_num_threads()
        if self._chooser is None or self._chooser.many != many:
            self._chooser = StepThreads(many, probe_threads=self.fast.probe_threads)
        return self._chooser

    def finish(self, seq: Running, *, keep_prefix: bool = True) -> None:
        """End ``seq``: keep its keys and values as a prefix for later requests, then give its
        row to the last running sequence (rows stay packed)."""
        assert self._k is not None and self._v is not None
        index = self.running.index(seq)
        n = len(seq.ids)
        if keep_prefix and n >= _MIN_PREFIX:
            self._keep(tuple(seq.ids), self._k[:, seq.row, :, :n].clone(), self._v[:, seq.row, :, :n].clone())
        last = self.running[-1]
        if last is not seq:
            m = len(last.ids)
            self._k[:, seq.row, :, :m] = self._k[:, last.row, :, :m]
            self._v[:, seq.row, :, :m] = self._v[:, last.row, :, :m]
            last.row = seq.row
            self.running[index] = last
        self.running.pop()
        if not self.running:  # let the memory go between bursts
            self._k = self._v = None
            self._views, self._views_of = [], None

    def reset(self) -> None:
        """Drop every running sequence (after a failed step: their caches may be half written)."""
        self.running = []
        self._k = self._v = None
        self._views, self._views_of = [], None

    def _keep(self, key: tuple[int, ...], k: torch.Tensor, v: torch.Tensor) -> None:
        size = 2 * k.numel() * 4
        if size > self.prefix_limit:
            return
        old = self._prefixes.pop(key, None)
        if old is not None:
            self._prefix_bytes -= 2 * old[0].numel() * 4
        # a stored prefix of this sequence is now redundant
        for other in [o for o in self._prefixes if len(o) < len(key) and key[:len(o)] == o]:
            ok, _ = self._prefixes.pop(other)
            self._prefix_bytes -= 2 * ok.numel() * 4
        while self._prefixes and self._prefix_bytes + size > self.prefix_limit:
            _, (ok, _) = self._prefixes.popitem(last=False)
            self._prefix_bytes -= 2 * ok.numel() * 4
        self._prefixes[key] = (k, v)
        self._prefix_bytes += size

    @property
    def prefix_bytes(self) -> int:
        """Bytes the prefix cache holds."""
        return self._prefix_bytes

    def clear_prefixes(self) -> None:
        self._prefixes.clear()
        self._prefix_bytes = 0

