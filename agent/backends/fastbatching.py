"""Continuous batching on our own CPU kernels: the fast decoder's weights, many streams a step.

:class:`FastBatchingBackend` is :class:`~agent.backends.batching.BatchingBackend` (the same
requests, queues, admission, sampling per row, grammars, cancellation and error isolation)
with the model's forward passes done by a :class:`~agent.models.fastbatch.SlotDecoder` over
the :class:`~agent.models.fastpath.FastDecoder`'s packed int8/int4 weights instead of
transformers' fp32 forward. One scheduler thread loops:

1. admit waiting requests while a row and key/value memory are free (``kv_limit_mb``);
2. prefill newcomers, at most ``prefill_chunk`` prompt tokens between two decode steps
   while streams are running (all at once when none is), each from the longest prefix
   already computed (a previous turn of the conversation, a shared system prompt);
3. one decode step over every running stream, then each stream's token to its consumer;
   finished, cancelled and abandoned streams leave at once.

It serves Llama-family models on the CPU (what the fast decoder runs); the transformers
batching backend stays for other models and for CUDA.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from agent.backends.batching import BatchingBackend, _failed, _Request, _Scheduler
from agent.errors import BackendError
from agent.models.model import LanguageModel
from agent.models.sampling import choose_tokens

__all__ = ["FastBatchingBackend", "batching_backend"]

log = logging.getLogger(__name__)


class _FastScheduler(_Scheduler):
    """The scheduler thread of :class:`FastBatchingBackend`: admit, prefill a chunk, step."""

    def __init__(self, lm: LanguageModel, max_batch_size: int, window_ms: float, prefill_chunk: int,
                 kv_limit_mb: float, prefix_cache_mb: float) -> None:
        from agent.models.fastbatch import SlotDecoder

        super().__init__(lm, max_batch_size, window_ms, prefill_chunk)
        self.engine = SlotDecoder(lm.fast, kv_limit_mb=kv_limit_mb, prefix_cache_mb=prefix_cache_mb)
        self.prefilling: deque[tuple[_Request, Any]] = deque()
        self.rows: list[_Request] = []  # row b runs engine.running[b]
        self.next_tokens: list[int] = []  # what each row feeds next
        self.seen: Any = None  # (rows, vocab) bool: tokens in each row's context (repetition penalty)
        self.vocab = int(lm.fast.vocab_size)

    def _prepare(self) -> None:
        pass  # everything is made in __init__: the fast decoder is loaded already

    def _running(self) -> bool:
        return bool(self.rows)

    def _tick(self) -> None:
        if self.prefilling:
            self._prefill_some()
        super()._tick()

    # -- admission and prefill ---------------------------------------------------------------

    def _admit(self) -> bool:
        if not self._take(block=not self.rows and not self.prefilling and not self.waiting):
            return False
        for req in [r for r in self.waiting if r.dead]:  # consumers that gave up while queued
            self.waiting.remove(req)
            req.finish()
        while self.waiting and len(self.rows) + len(self.prefilling) < self.max_batch_size:
            req = self.waiting[0]
            if not self.engine.fits(len(req.ids), req.budget, joining=len(self.prefilling)):
                break  # waits for a stream to end and free its memory
            self.waiting.popleft()
            try:
                self.prefilling.append((req, self.engine.start(req.ids)))
            except Exception as exc:
                _failed(req, exc)
        return True

    def _prefill_some(self) -> None:
        """Prefill newcomers: ``max_prefill_tokens`` prompt tokens while streams run (so they
        keep flowing), everything waiting when none does (the first token comes soonest)."""
        import torch

        budget = self.max_prefill_tokens if self.rows else sum(p.left for _, p in self.prefilling)
        while budget > 0 and self.prefilling:
            req, pending = self.prefilling[0]
            if req.dead:
                self.prefilling.popleft()
                req.finish()
                continue
            take = min(budget, pending.left)
            try:
                with self.model_lock:
                    logits = self.engine.prefill(pending, take)
            except Exception as exc:
                log.warning("prefill failed for one request: %s", exc)
                self.prefilling.popleft()
                _failed(req, exc)
                continue
            budget -= take
            self.prefill_passes += 1
            if logits is None:
                continue
            self.prefilling.popleft()
            seen = torch.zeros(1, self.vocab, dtype=torch.bool)
            seen[0, torch.tensor(req.ids)] = True
            chosen, errors = choose_tokens(logits[None], [req], seen)
            if errors:
                _failed(req, errors[0])
                continue
            token = int(chosen[0])
            if not self._emit(req, token):
                continue
            try:
                self.engine.join(pending, req.budget)
            except Exception as exc:
                log.exception("joining the batch failed")
                _failed(req, exc)
                continue
            seen[0, token] = True
            self.rows.append(req)
            self.next_tokens.append(token)
            self.seen = seen if self.seen is None else torch.cat([self.seen, seen])

    # -- decode ----------------------------------------------------------------------------------

    def _step(self) -> None:
        import torch

        self._retire([i for i, r in enumerate(self.rows) if r.dead], tell=True)
        if not self.rows:
            return
        with self.model_lock:
            logits = self.engine.step(self.next_tokens)
        tokens, errors = choose_tokens(logits, self.rows, self.seen)
        for i, exc in errors.items():
            _failed(self.rows[i], exc)
            tokens[i] = 0  # a valid id for the bookkeeping below; the row leaves
        self.seen[torch.arange(len(self.rows)), tokens] = True
        self.next_tokens = tokens.tolist()
        self.steps += 1
        self.batched_rows += len(self.rows)
        ended = [i for i, (req, token) in enumerate(zip(self.rows, self.next_tokens, strict=True))
                 if i in errors or not self._emit(req, token)]
        self._retire(ended)

    def _retire(self, indices: list[int], *, tell: bool = False) -> None:
        """Take rows ``indices`` out (``tell``: end their consumers' streams now; else that
        happened already). The engine gives each freed row to its last stream; the
        bookkeeping here follows."""
        for i in sorted(indices, reverse=True):
            if tell:
                self.rows[i].finish()
            self.engine.finish(self.engine.running[i])
            last = len(self.rows) - 1
            if i != last:
                self.rows[i], self.next_tokens[i] = self.rows[last], self.next_tokens[last]
                self.seen[i] = self.seen[last]
            self.rows.pop()
            self.next_tokens.pop()
            self.seen = self.seen[:last] if last else None

    def _fail_running(self, exc: BaseException) -> None:
        error = exc if isinstance(exc, BackendError) else BackendError(f"batched generation failed: {exc}")
        for req in self.rows:
            req.finish(error=error)
        self.rows, self.next_tokens, self.seen = [], [], None
        self.engine.reset()

    def _fail_all(self, exc: BaseException) -> None:
        self._fail_running(exc)
        error = exc if isinstance(exc, BackendError) else BackendError(f"batched generation failed: {exc}")
        while self.prefilling:
            self.prefilling.popleft()[0].finish(error=error)
        while self.waiting:
            self.waiting.popleft().finish(error=error)


class FastBatchingBackend(BatchingBackend):
    """:class:`~agent.backends.batching.BatchingBackend` on the fast decoder (see the module
    docstring): for a :class:`LanguageModel` whose ``fast`` decoder is loaded.

    ``prefill_chunk``: prompt tokens prefilled between two decode steps while streams run;
    ``kv_limit_mb``: the running streams' key/value memory, beyond which newcomers wait;
    ``prefix_cache_mb``: finished streams' keys/values kept for prompts that start the same.
    """

    def __init__(self, model: LanguageModel, *, max_batch_size: int = 16, window_ms: float = 5.0,
                 prefill_chunk: int = 128, kv_limit_mb: float = 2048.0, prefix_cache_mb: float = 256.0) -> None:
        if not self.supports(model):
            raise BackendError(f"{model.name} does not run on the fast CPU decoder: use the transformers "
                               "batching backend (server.batching.engine: transformers)")
        self.model = model
        self.name = model.name
        self.context_window = model.context_window
        self._fast = _FastScheduler(model, max_batch_size, window_ms, prefill_chunk, kv_limit_mb, prefix_cache_mb)
        self._scheduler = self._fast

    @staticmethod
    def supports(model: LanguageModel) -> bool:
        return getattr(model, "fast", None) is not None

    @property
    def reused_tokens(self) -> int:
        """Prompt tokens taken from the prefix cache instead of prefilled, so far."""
        return int(self._fast.engine.reused_tokens)


def batching_backend(model: LanguageModel, *, engine: str = "auto", max_batch_size: int = 16, window_ms: float = 5.0,
                     max_prefill_tokens: int = 2048, prefill_chunk: int = 128, kv_limit_mb: float = 2048.0,
                     prefix_cache_mb: float = 256.0) -> Any:
    """The batching backend for ``model``: on the fast decoder's kernels
    (:class:`FastBatchingBackend`) when the model runs on it and ``engine`` is ``auto`` or
    ``fast``; else transformers' (:class:`~agent.backends.batching.BatchingBackend`); else,
    for a model that cannot batch, the single-stream backend. ``engine="fast"`` on a model
    without the fast decoder is an error. The options are :class:`~agent.config.BatchingConfig`'s."""
    if engine not in ("auto", "fast", "transformers"):
        raise BackendError(f"unknown batching engine {engine!r}: use auto, fast or transformers")
    if engine != "transformers" and getattr(model, "fast", None) is not None:
        return FastBatchingBackend(model, max_batch_size=max_batch_size, window_ms=window_ms,
                                   prefill_chunk=prefill_chunk, kv_limit_mb=kv_limit_mb, prefix_cache_mb=prefix_cache_mb)
    if engine == "fast":
        raise BackendError(f"{model.name} does not run on the fast CPU decoder (a Llama-family model on the CPU); "
                           "use server.batching.engine: auto or transformers")
    if BatchingBackend.supports(model):
        return BatchingBackend(model, max_batch_size=max_batch_size, window_ms=window_ms,
                               max_prefill_tokens=max_prefill_tokens)
    from agent.backends.local import TransformersBackend

    log.info("%s cannot be batched; serving it one generation at a time", model.name)
    return TransformersBackend(model)

