"""Continuous batching for the local transformers backend.

:class:`LanguageModel.stream` decodes one sequence at a time under a lock, so concurrent
clients queue behind each other. On a CPU (and a GPU) a decode step is dominated by reading
the weights, so decoding 8 sequences in one forward pass costs little more than decoding
one. :class:`BatchingBackend` runs one scheduler thread that owns the model:

- a request arriving while the scheduler is idle waits ``window_ms`` for others to join;
- new sequences are prefilled one by one (no padding waste), between decode steps, at most
  ``max_prefill_tokens`` prompt tokens at a time so running streams keep flowing;
- every step runs ONE forward pass over all running sequences: their key/value caches sit
  left-padded in one batch (an attention mask hides the padding, position ids count each
  sequence's own tokens), so each sequence sees exactly what it would see alone;
- sequences leave when they finish, are cancelled or their consumer goes away; the batch
  is compacted and the all-padding columns on the left are trimmed.

Each sequence has its own sampling options (temperature, top-k/p, repetition penalty, seed),
its own grammar when it offers tools or asks for JSON (an
:class:`~agent.models.constrain.Constraint` per row, masked and advanced in
:func:`~agent.models.sampling.choose_tokens`), and its own queue of token ids; the consumer thread turns ids into text with the same
:func:`~agent.models.textstream.stream_text` machinery as the single-stream path. Greedy
output matches single-stream decoding up to floating-point ties.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

from agent.backends.base import Message
from agent.errors import BackendError, InputError
from agent.models.loops import RepetitionGuard
from agent.models.model import LanguageModel
from agent.models.sampling import choose_tokens
from agent.models.textstream import TextStream, stream_text
from agent.models.toolformat import stream_with_tools
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec, check_tool_choice

__all__ = ["BatchingBackend"]

log = logging.getLogger(__name__)

_CLOSE = object()


class _Request:
    """One sequence: its prompt, options, and the queue its token ids go to."""

    def __init__(self, ids: list[int], options: GenerationOptions, budget: int, out: TextStream) -> None:
        self.ids = ids
        self.options = options
        self.budget = budget
        self.out = out
        self.tokens: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.abandoned = False
        self.generated = 0
        self.rng: Any = None
        self.constraint: Any = None  # the reply's grammar (tools, JSON), advanced by choose_tokens
        self.guard = RepetitionGuard()  # ends a reply that loops, as LanguageModel.stream does

    @property
    def dead(self) -> bool:
        return self.abandoned or self.out.cancelled

    def finish(self, reason: str | None = None, error: BaseException | None = None) -> None:
        if self.out.cancelled:
            self.out.finish_reason = "cancelled"
        elif reason is not None:
            self.out.finish_reason = reason
        if error is not None:
            self.tokens.put(error)
        self.tokens.put(None)


class _Batch:
    """The running sequences: their rows in one left-padded key/value cache (transformers'
    ``DynamicCache``; rows are merged and dropped here, between steps)."""

    def __init__(self, vocab: int, device: Any) -> None:
        self.vocab = vocab
        self.device = device
        self.rows: list[_Request] = []
        self.cache: Any = None
        self.mask: Any = None  # [B, T] 1 = real token, 0 = padding
        self.positions: Any = None  # [B] tokens each row holds (its next position id)
        self.pending: Any = None  # [B] the token each row feeds next
        self.seen: Any = None  # [B, V] token ids in each row's context (repetition penalty)
        self.padded = False

    @staticmethod
    def new_cache(layers: list[tuple[Any, Any]] | None = None) -> Any:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache()
        for keys, values in layers or ():
            layer = DynamicLayer()
            layer.update(keys, values)
            cache.layers.append(layer)
        return cache

    def reset(self) -> None:
        self.rows, self.cache, self.padded = [], None, False
        self.mask = self.positions = self.pending = self.seen = None

    @property
    def width(self) -> int:
        return int(self.mask.shape[1]) if self.mask is not None else 0

    def add(self, cache: Any, reqs: list[_Request], lengths: list[int], tokens: list[int],
            rows: list[int]) -> None:
        """Merge prefilled sequences into the batch: ``rows`` of ``cache`` (left-padded, each
        right-aligned) hold ``reqs`` with ``lengths`` real tokens; ``tokens`` come next.
        Everything stays right-aligned: shorter rows get padding on the left."""
        import torch
        from torch.nn.functional import pad

        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        group_width = cache.get_seq_length()
        width = max(self.width, group_width)
        parts = [self.cache, cache] if self.rows else [cache]
        selected = [None, index] if self.rows else [index]

        def stack(tensors: list[Any]) -> Any:  # [b, heads, t, dim] each, padded to width
            return torch.cat([pad(t if sel is None else t.index_select(0, sel), (0, 0, width - t.shape[-2], 0))
                              for t, sel in zip(tensors, selected, strict=True)])

        self.cache = self.new_cache([(stack([c.layers[i].keys for c in parts]),
                                      stack([c.layers[i].values for c in parts]))
                                     for i in range(len(cache.layers))])
        new_mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], dtype=torch.long, device=self.device)
        new_pos = torch.tensor(lengths, dtype=torch.long, device=self.device)
        new_pending = torch.tensor(tokens, dtype=torch.long, device=self.device)
        new_seen = torch.zeros(len(reqs), self.vocab, dtype=torch.bool, device=self.device)
        for i, (req, token) in enumerate(zip(reqs, tokens, strict=True)):
            new_seen[i, torch.tensor(req.ids + [token], device=self.device)] = True
        if self.rows:
            self.mask = torch.cat([pad(self.mask, (width - self.width, 0)), new_mask])
            self.positions = torch.cat([self.positions, new_pos])
            self.pending = torch.cat([self.pending, new_pending])
            self.seen = torch.cat([self.seen, new_seen])
        else:
            self.mask, self.positions, self.pending, self.seen = new_mask, new_pos, new_pending, new_seen
        self.rows.extend(reqs)
        self.padded = bool((self.mask == 0).any())

    def keep(self, keep: list[int]) -> None:
        """Drop every row not in ``keep``, then trim columns that are padding in all rows."""
        if not keep:
            self.reset()
            return
        import torch

        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = self.mask.index_select(0, index)
        first = int(mask.any(0).nonzero()[0])
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]
        self.mask = mask[:, first:]
        self.positions = self.positions.index_select(0, index)
        self.pending = self.pending.index_select(0, index)
        self.seen = self.seen.index_select(0, index)
        self.rows = [self.rows[i] for i in keep]
        self.padded = bool((self.mask == 0).any())


def _similar_lengths(requests: list[_Request], waste: float = 0.25) -> list[list[_Request]]:
    """Split into prefill groups whose padding stays under ``waste`` of their tokens (one
    padded forward pass beats several small ones, but not at any amount of padding)."""
    groups: list[list[_Request]] = []
    for req in sorted(requests, key=lambda r: len(r.ids)):
        group = groups[-1] if groups else None
        if group is not None:
            total = sum(len(r.ids) for r in group) + len(req.ids)
            if len(req.ids) * (len(group) + 1) <= (1 + waste) * total:
                group.append(req)
                continue
        groups.append([req])
    return groups


def _failed(req: _Request, exc: BaseException) -> None:
    """End one sequence with its own error (the others carry on)."""
    if not isinstance(exc, (BackendError, InputError)):
        exc = BackendError(f"this request could not be sampled ({exc}): check its sampling options "
                           "(temperature, top_p, top_k, seed)")
    req.finish(error=exc)


class _Scheduler:
    """The thread that owns the model: admits, prefills and decodes, one step at a time."""

    def __init__(self, lm: LanguageModel, max_batch_size: int, window_ms: float, max_prefill_tokens: int) -> None:
        self.lm = lm
        self.max_batch_size = max_batch_size
        self.window_s = window_ms / 1000.0
        self.max_prefill_tokens = max_prefill_tokens
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.waiting: deque[_Request] = deque()
        self.batch: _Batch | None = None
        self.thread: threading.Thread | None = None
        self.started = threading.Lock()
        self.closed = False
        self.keep_logits = False  # whether forward takes logits_to_keep (read in _run: lm.model may load)
        # Other users of the same LanguageModel (its own stream()) take this lock too.
        self.model_lock: Any = getattr(lm, "_lock", None) or nullcontext()
        self.steps = 0
        self.batched_rows = 0
        self.prefill_passes = 0

    def submit(self, req: _Request) -> None:
        if self.closed:
            raise BackendError("the batching backend was closed: restart the server")
        with self.started:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="llmos-batching", daemon=True)
                self.thread.start()
        self.inbox.put(req)

    def close(self) -> None:
        self.closed = True
        self.inbox.put(_CLOSE)
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _run(self) -> None:
        import torch

        self._prepare()
        with torch.inference_mode():
            while self._admit():
                self._tick()
        self._fail_all(BackendError("the batching backend was closed"))

    def _prepare(self) -> None:
        """Set up on the scheduler thread, before the first request."""
        self.keep_logits = "logits_to_keep" in inspect.signature(self.lm.model.forward).parameters
        vocab = int(self.lm.model.get_output_embeddings().weight.shape[0])
        self.batch = _Batch(vocab, self.lm.model.device)

    def _running(self) -> bool:
        return bool(self.batch is not None and self.batch.rows)

    def _tick(self) -> None:
        """The work between two admissions: one decode step of the running sequences."""
        if self._running():
            try:
                self._step()
            except Exception as exc:  # fail the running sequences, keep serving
                log.exception("batched decode step failed")
                self._fail_running(exc)

    def _fail_running(self, exc: BaseException) -> None:
        self._fail_all(exc)

    def _take(self, block: bool) -> bool:
        """Move requests from the inbox to the waiting line; False once closed."""
        try:
            item = self.inbox.get(block=block)
        except queue.Empty:
            return True
        if item is _CLOSE:
            return False
        self.waiting.append(item)
        if block and self.window_s:  # idle until now: give concurrent requests a moment to join
            deadline = time.monotonic() + self.window_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = self.inbox.get(timeout=left)
                except queue.Empty:
                    break
                if item is _CLOSE:
                    return False
                self.waiting.append(item)
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return True
            if item is _CLOSE:
                return False
            self.waiting.append(item)

    def _admit(self) -> bool:
        assert self.batch is not None
        if not self._take(block=not self.batch.rows and not self.waiting):
            return False
        if any(req.dead for req in self.waiting):  # wake consumers that gave up while queued
            for req in [r for r in self.waiting if r.dead]:
                self.waiting.remove(req)
                req.finish()
        budget = self.max_prefill_tokens
        admitted: list[_Request] = []
        while self.waiting and len(self.batch.rows) + len(admitted) < self.max_batch_size:
            if admitted and len(self.waiting[0].ids) > budget:
                break
            admitted.append(self.waiting.popleft())
            budget -= len(admitted[-1].ids)
        for group in _similar_lengths(admitted):
            self._prefill_isolated(group)
        return True

    def _prefill_isolated(self, group: list[_Request]) -> None:
        """Prefill ``group``; if its forward pass fails, each sequence again on its own, so
        only the one that cannot be prefilled ends (with its own error)."""
        try:
            self._prefill(group)
        except Exception as exc:
            if len(group) == 1:
                log.warning("prefill failed for one request: %s", exc)
                _failed(group[0], exc)
                return
            log.warning("a prefill group of %d failed (%s): prefilling them one by one", len(group), exc)
            for req in group:
                self._prefill_isolated([req])

    def _prefill(self, group: list[_Request]) -> None:
        """One forward pass over the group's prompts (left-padded), then into the batch."""
        import torch

        assert self.batch is not None
        lengths = [len(r.ids) for r in group]
        width = max(lengths)
        device = self.batch.device
        ids = torch.tensor([[0] * (width - n) + r.ids for r, n in zip(group, lengths, strict=True)],
                           dtype=torch.long, device=device)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self.keep_logits else {}
        padded = min(lengths) < width
        if padded:
            mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], dtype=torch.long, device=device)
            kwargs.update(attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
        cache = self.batch.new_cache()
        with self.model_lock:
            out = self.lm.model(input_ids=ids, past_key_values=cache, use_cache=True, **kwargs)
        self.prefill_passes += 1
        if padded:  # padding never attends or is attended to, but keep its slots finite
            for layer in cache.layers:
                for i, n in enumerate(lengths):
                    layer.keys[i, :, :width - n] = 0
                    layer.values[i, :, :width - n] = 0
        seen = torch.zeros(len(group), self.batch.vocab, dtype=torch.bool, device=device)
        for i, req in enumerate(group):
            seen[i, torch.tensor(req.ids, device=device)] = True
        chosen, errors = choose_tokens(out.logits[:, -1, :].float(), group, seen)
        tokens = chosen.tolist()
        for i, exc in errors.items():
            _failed(group[i], exc)
        keep = [i for i, (req, token) in enumerate(zip(group, tokens, strict=True))
                if i not in errors and self._emit(req, token)]
        if not keep:
            return
        try:  # tokens went out already: a failure here must not make the caller prefill them again
            self.batch.add(cache, [group[i] for i in keep], [lengths[i] for i in keep], [tokens[i] for i in keep],
                           rows=keep)
        except Exception as exc:
            log.exception("joining the batch failed")
            for i in keep:
                _failed(group[i], exc)

    def _emit(self, req: _Request, token: int) -> bool:
        """Hand a token to its consumer; False when the sequence is over."""
        if req.dead:
            req.finish()
            return False
        if token in self.lm.eos_token_ids:
            req.finish()
            return False
        req.generated += 1
        req.out.completion_tokens += 1
        req.tokens.put(token)
        if req.generated >= req.budget:
            req.finish("length")
            return False
        if req.guard.looping(token):  # the same block over and over: end here, as a lone stream does
            if req.constraint is not None and not req.constraint.accepting:
                req.constraint.wrap_up = True  # inside a constrained call: close it as soon as allowed
                req.guard = RepetitionGuard()
                return True
            req.finish()
            return False
        return True

    def _step(self) -> None:
        import torch

        batch = self.batch
        assert batch is not None
        live = [i for i, r in enumerate(batch.rows) if not r.dead]
        if len(live) < len(batch.rows):
            for r in batch.rows:
                if r.dead:
                    r.finish()
            batch.keep(live)
            if not batch.rows:
                return
        mask = None
        if batch.padded:
            ones = torch.ones(len(batch.rows), 1, dtype=torch.long, device=batch.device)
            mask = torch.cat([batch.mask, ones], dim=1)
        with self.model_lock:
            out = self.lm.model(input_ids=batch.pending[:, None], attention_mask=mask,
                                position_ids=batch.positions[:, None], past_key_values=batch.cache, use_cache=True)
        batch.mask = torch.nn.functional.pad(batch.mask, (0, 1), value=1)
        batch.positions += 1
        tokens, errors = choose_tokens(out.logits[:, -1, :].float(), batch.rows, batch.seen)
        for i, exc in errors.items():
            _failed(batch.rows[i], exc)
            tokens[i] = 0  # a valid id for the bookkeeping below; the row is dropped
        batch.seen[torch.arange(len(batch.rows), device=batch.device), tokens] = True
        batch.pending = tokens
        self.steps += 1
        self.batched_rows += len(batch.rows)
        keep = [i for i, (req, token) in enumerate(zip(batch.rows, tokens.tolist(), strict=True))
                if i not in errors and self._emit(req, token)]
        if len(keep) < len(batch.rows):
            batch.keep(keep)

    def _fail_all(self, exc: BaseException) -> None:
        error = exc if isinstance(exc, BackendError) else BackendError(f"batched generation failed: {exc}")
        rows = list(self.batch.rows) if self.batch is not None else []
        while self.waiting:
            rows.append(self.waiting.popleft())
        for req in rows:
            req.finish(error=error)
        if self.batch is not None:
            self.batch.keep([])


class BatchingBackend:
    """A :class:`~agent.backends.base.Backend` that batches concurrent generations of one
    local :class:`LanguageModel` (decoder-only models with full attention).

    Use :meth:`supports` to check a model; :func:`~agent.backends.fastbatching.batching_backend` falls back to the
    single-stream :class:`~agent.backends.local.TransformersBackend` when it is not.
    """

    def __init__(self, model: LanguageModel, *, max_batch_size: int = 16, window_ms: float = 5.0,
                 max_prefill_tokens: int = 2048) -> None:
        if not self.supports(model):
            raise BackendError(f"{model.name} cannot be batched (encoder-decoder or sliding-window attention): "
                               "use the transformers backend without batching")
        self.model = model
        self.name = model.name
        self.context_window = model.context_window
        self._scheduler = _Scheduler(model, max_batch_size, window_ms, max_prefill_tokens)

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """The model's own sampling defaults (the agent applies those its config leaves unset),
        so `llmos serve` samples like `llmos ask`."""
        return self.model.sampling_defaults

    @staticmethod
    def supports(model: LanguageModel) -> bool:
        """Decoder-only, full attention everywhere (a sliding window needs its own cache)."""
        if model.is_seq2seq:
            return False
        config = model.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        kinds = getattr(text, "layer_types", None) or ()
        if any(kind != "full_attention" for kind in kinds):
            return False
        return not (getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True))

    @property
    def mean_batch_size(self) -> float:
        """Average rows per decode step so far (how much batching actually happened)."""
        s = self._scheduler
        return round(s.batched_rows / s.steps, 2) if s.steps else 0.0

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        lm = self.model
        if tools or tool_choice != "auto":
            tool_choice = check_tool_choice(tool_choice, list(tools))
        ids = lm.encode_prompt(lm.format_chat(list(messages), tools=tools, tool_choice=tool_choice))
        if not ids:
            raise InputError("the prompt is empty after tokenization: give the model some text")
        if len(ids) >= lm.context_window:
            raise InputError(f"the prompt is {len(ids)} tokens but {lm.name} reads at most {lm.context_window}; "
                             "shorten it")
        out = TextStream(prompt_tokens=len(ids))
        budget = max(1, min(options.max_new_tokens, lm.context_window - len(ids)))
        req = _Request(ids, options, budget, out)
        req.constraint = lm.constraint(tools, tool_choice, response_format)
        if req.constraint is not None:
            req.constraint.budget = budget
        if tools and tool_choice != "none":
            return out.attach(stream_with_tools(self._token_ids(req), lm.tokenizer, options.stop, list(tools),
                                                weakref.ref(out)))
        return out.attach(stream_text(self._token_ids(req), lm.tokenizer, options.stop))

    def _token_ids(self, req: _Request) -> Iterator[int]:
        self._scheduler.submit(req)  # on first next(): generation starts when the consumer reads
        try:
            while True:
                item = req.tokens.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    if isinstance(item, BackendError):
                        raise item
                    raise BackendError(f"generation failed in {self.name}: {item}") from item
                yield item
        finally:
            req.abandoned = True  # a stop string or a closed consumer: the scheduler drops the row

    def close(self) -> None:
        self._scheduler.close()
