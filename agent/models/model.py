"""A loaded language model: generate, stream, chat and batch over one object.

Streaming is the primitive: :meth:`LanguageModel.stream` yields text pieces and every
other method joins or batches it. On CPU, Llama-family models decode through the lean
:class:`~agent.models.fastpath.FastDecoder`; everything else runs transformers'
``generate`` in a worker thread, handing token ids back through a queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from agent.errors import BackendError, InputError
from agent.models.loops import RepetitionGuard
from agent.models.textstream import TextStream, stream_text
from agent.options import GenerationOptions, with_overrides
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec, check_tool_choice

__all__ = ["LanguageModel", "Messages"]

log = logging.getLogger(__name__)

Messages = Sequence[dict[str, Any]]


def _plain_transcript(messages: Messages) -> str:
    """A chat format for models without a chat template (GPT-2, T5, base models)."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{names.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


class LanguageModel:
    """A model plus its tokenizer, ready to generate.

    Build one with :func:`agent.load_model`. Generation is serialised by a lock: one
    generation at a time per model object.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, device: str, quantization: str | None = None,
                 fast: Any = None, hf_loader: Callable[[], tuple[Any, Any]] | None = None) -> None:
        self._model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.quantization = quantization
        self.fast = fast
        self._hf_loader = hf_loader
        """For a model read without transformers (a lean :class:`~agent.models.checkpoint.
        Checkpoint` run by the fast decoder): loads the transformers model and tokenizer
        the first time something needs them (batched generation, training, evaluation)."""
        self._hf_tokenizer: Any = None if hf_loader is not None else tokenizer
        self._hf_guard = threading.Lock()
        self.is_seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self._lock = threading.Lock()
        self._holder: tuple[int, weakref.ref[TextStream] | None] | None = None
        self._ll_tokenizer: Any = None  # llguidance's view of the tokenizer, built on first constrained reply
        self._closers: Any = None
        self._tag_ids: dict[str, int] = {}
        self._special_ids: list[int] = []
        self.tool_style: str | None = None
        """How tools are described to a model whose chat template does not take them
        (:data:`agent.models.toolformat.TOOL_STYLES`; None: the default)."""
        from agent.models.toolformat import tool_bias

        self.tool_bias: dict[str, float] = tool_bias(name)
        """Calibration of ``auto`` tool choice (``open``: the least log-probability of a call's
        first token at the start of the reply for the reply to open with a call; ``stop``:
        added to the log-odds of ending the reply after a call); measured per model, see
        :data:`agent.models.toolformat.MEASURED_TOOL_BIAS`."""
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_token_ids = self._eos_ids()

    # ---- the transformers objects, loaded on demand for a lean model ----------------------
    @property
    def model(self) -> Any:
        """The transformers model (for a lean model: loaded now, on first use)."""
        self._load_hf()
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._load_hf()
        self._model = value

    @property
    def hf_tokenizer(self) -> Any:
        """The transformers tokenizer (padding, tensors, saving); equal to ``tokenizer``
        unless the model was read without transformers."""
        self._load_hf()
        return self._hf_tokenizer

    @property
    def transformers_loaded(self) -> bool:
        """False while a lean model has not needed transformers yet."""
        return self._hf_loader is None

    def _load_hf(self) -> None:
        if self._hf_loader is None:
            return
        with self._hf_guard:
            if self._hf_loader is None:
                return
            log.info("loading %s through transformers for a call the lean model does not serve", self.name)
            model, tokenizer = self._hf_loader()
            if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
                tokenizer.pad_token = tokenizer.eos_token
            self._model, self._hf_tokenizer, self._hf_loader = model, tokenizer, None

    # ---- facts -------------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        return getattr(self._model, "dtype", None)

    @property
    def context_window(self) -> int:
        """Most tokens the model attends to (prompt plus reply)."""
        cfg = self._model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", 0)
        return limit if 0 < limit < 1_000_000 else 512

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """How this model is meant to be sampled (:func:`agent.models.presets.sampling_defaults`):
        its generation config's explicit values, or measured ones for the embedded model."""
        from agent.models.presets import sampling_defaults

        folder = getattr(self._model, "folder", None)  # a lean checkpoint
        declared = None
        config = getattr(self._model, "generation_config", None)
        if folder is None and config is not None and hasattr(config, "to_diff_dict"):  # transformers: what was set
            declared = {k: v for k, v in config.to_diff_dict().items() if not k.startswith("_")}
        return sampling_defaults(self.name, folder, declared)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self._model, "generation_config", None), self._model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def format_chat(self, messages: Messages, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto") -> str:
        """The prompt text for ``messages``, through the model's own chat template.

        ``messages`` may hold assistant ``tool_calls`` and ``tool`` results (OpenAI's shape);
        ``tools`` are described to the model (by its template when it takes them, else in
        the system message: :mod:`agent.models.toolformat`) unless ``tool_choice`` is
        ``none``."""
        from agent.models.toolformat import DEFAULT_STYLE, render_messages, template_takes_tools

        native = self.has_chat_template and template_takes_tools(self.tokenizer)
        rendered, tool_list = render_messages(messages, tools, tool_choice, template_tools=native,
                                              style=self.tool_style or DEFAULT_STYLE)
        if self.has_chat_template:
            extra = {"tools": tool_list} if tool_list else {}
            return str(self.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False,
                                                          **extra))
        return _plain_transcript(rendered)

    def encode_prompt(self, prompt: str) -> list[int]:
        # A chat template already carries its special tokens; a plain prompt gets the
        # tokenizer's usual ones (e.g. BOS).
        special = not (self.has_chat_template and prompt.startswith(self._template_prefix()))
        return list(self.tokenizer(prompt, add_special_tokens=special)["input_ids"])

    def _template_prefix(self) -> str:
        probe = self.tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
        return str(probe)[:8]

    # ---- generation --------------------------------------------------------------------
    def stream(self, prompt: str | Messages, options: GenerationOptions | None = None, *,
               tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
               response_format: ResponseFormat | None = None, constrained: bool = True,
               parallel_tool_calls: bool = True, **overrides: Any) -> TextStream:
        """Generate from a prompt string or a list of chat messages, yielding text pieces.

        With ``tools`` the model may call them (``tool_choice``: ``auto``, ``none``,
        ``required`` or a tool's name): the stream's ``tool_calls`` holds the calls (their
        arguments satisfy the tool's schema) and ``finish_reason`` is ``tool_calls``; the
        pieces carry the text around the calls. ``response_format`` (``json_object`` or
        ``json_schema``) makes the reply JSON. Both are enforced token by token
        (:mod:`agent.models.constrain`) unless ``constrained`` is False (then the model is
        only told, and its reply parsed: for measuring what the constraint adds). A string
        ``prompt`` is used as is: describing the tools in it is the caller's job."""
        options = _options(options, overrides)
        if tools or tool_choice != "auto":
            tool_choice = check_tool_choice(tool_choice, list(tools))
        text = prompt if isinstance(prompt, str) else self.format_chat(prompt, tools=tools, tool_choice=tool_choice)
        ids = self.encode_prompt(text)
        if not ids:
            raise InputError("the prompt is empty after tokenization: give the model some text")
        if not self.is_seq2seq and len(ids) >= self.context_window:
            raise InputError(
                f"the prompt is {len(ids)} tokens but {self.name} reads at most {self.context_window}; shorten it"
            )
        constraint = self.constraint(tools, tool_choice, response_format, parallel=parallel_tool_calls) \
            if constrained else None
        out = TextStream(prompt_tokens=len(ids))
        # The generator holds only a weak reference to its stream: a stream dropped half-read
        # is then freed (and its generation lock released) by reference counting at once,
        # not whenever the cycle collector happens to run.
        ref = weakref.ref(out)
        token_ids = self._token_ids(ids, options, ref, constraint)
        if tools and tool_choice != "none":
            from agent.models.toolformat import stream_with_tools

            return out.attach(stream_with_tools(token_ids, self.tokenizer, options.stop, list(tools), ref))
        return out.attach(stream_text(token_ids, self.tokenizer, options.stop))

    def constraint(self, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
                   response_format: ResponseFormat | None = None, *, parallel: bool = True) -> Any:
        """A fresh :class:`~agent.models.constrain.Constraint` for one reply under these
        settings, or None when the reply is free text."""
        from agent.models.constrain import Constraint, closing_tokens, reply_grammar, special_tokens

        if self._ll_tokenizer is None:
            from agent.models.constrain import ll_tokenizer
            from agent.models.toolformat import CLOSE, OPEN

            self._ll_tokenizer = ll_tokenizer(self.tokenizer, self._vocab_size(), self.eos_token_ids)
            self._closers = closing_tokens(self._ll_tokenizer)
            self._special_ids = special_tokens(self._ll_tokenizer)
            for tag in (OPEN, CLOSE):  # a tag that is one special token (Qwen2.5): the grammar takes it too
                ids = self.tokenizer(tag, add_special_tokens=False)["input_ids"]
                if len(ids) == 1 and self._ll_tokenizer.is_special_token(int(ids[0])):
                    self._tag_ids[tag] = int(ids[0])
        grammar = reply_grammar(tools, tool_choice, response_format, parallel=parallel, tag_ids=self._tag_ids)
        if grammar is None:
            return None
        calls = bool(tools) and tool_choice != "none"
        open_ids: list[int] = []
        if calls and tool_choice == "auto" and self.tool_bias.get("open") is not None:
            from agent.models.toolformat import OPEN

            open_ids = list(self.tokenizer(OPEN, add_special_tokens=False)["input_ids"][:1])
        reserve = None
        if calls:  # the shortest call of the longest kind, closing tag included
            from agent.models.toolformat import call_block

            reserve = 8 + max(self.count_tokens(call_block(t.name, {k: "" for k in t.parameters.get("required") or []}))
                              for t in tools)
        return Constraint(self._ll_tokenizer, grammar, closers=self._closers, open_ids=open_ids, reserve=reserve,
                          special_ids=self._special_ids,
                          open_logprob=self.tool_bias.get("open") if calls and open_ids else None,
                          stop_bias=self.tool_bias.get("stop", 0.0) if calls else 0.0)

    def _vocab_size(self) -> int:
        """The width of the model's logits."""
        if self.fast is not None:
            return int(self.fast.vocab_size)
        size = getattr(self._model.config, "vocab_size", None)
        if isinstance(size, int) and size > 0:
            return size
        return len(self.tokenizer)

    def _acquire(self, ref: weakref.ref[TextStream] | None) -> None:
        """Take the generation lock for the stream behind ``ref``.

        Generation is one at a time per model. A stream this same thread left unfinished
        (read part-way and still referenced) would otherwise make the thread wait for itself
        forever; it is cancelled instead, since the thread has moved on from it.
        """
        if not self._lock.acquire(blocking=False):
            holder = self._holder
            if holder is not None and holder[0] == threading.get_ident():
                previous = holder[1]() if holder[1] is not None else None
                log.debug("a new generation on this thread cancels its unfinished stream")
                if previous is not None:
                    previous.close()
                else:  # the stream is gone but its generator is not yet: collect it
                    import gc

                    gc.collect()
            self._lock.acquire()
        self._holder = (threading.get_ident(), ref)

    def _release(self) -> None:
        self._holder = None
        self._lock.release()

    def _token_ids(self, ids: list[int], options: GenerationOptions, ref: weakref.ref[TextStream],
                   constraint: Any = None) -> Iterator[int]:
        budget = options.max_new_tokens
        if not self.is_seq2seq:
            budget = min(budget, self.context_window - len(ids))
            options = options.model_copy(update={"max_new_tokens": max(budget, 1)})

        def cancelled() -> bool:
            stream = ref()
            return stream is None or stream.cancelled

        produced = 0
        guard = RepetitionGuard()
        if constraint is not None:
            constraint.budget = options.max_new_tokens
        self._acquire(ref)
        try:
            source = (self.fast.generate(ids, options, should_stop=cancelled, eos_token_ids=self.eos_token_ids,
                                         constraint=constraint)
                      if self.fast is not None else self._hf_token_ids(ids, options, cancelled, constraint))
            try:
                for token_id in source:
                    if int(token_id) in self.eos_token_ids:
                        break
                    produced += 1
                    stream = ref()
                    if stream is not None:
                        stream.completion_tokens = produced
                    del stream
                    yield int(token_id)
                    if cancelled():
                        break
                    if guard.looping(int(token_id)):  # the same block over and over: end here, not at the cap
                        if constraint is not None and not constraint.accepting:
                            # inside a constrained call: close it as soon as the grammar allows
                            log.debug("wrapping up a constrained reply that repeats a %d-token block", guard.period)
                            constraint.wrap_up = True
                            guard = RepetitionGuard()
                            continue
                        log.debug("ending a reply that repeats a %d-token block", guard.period)
                        break
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        finally:
            self._release()
        stream = ref()
        if stream is None:
            return
        if stream.cancelled:
            stream.finish_reason = "cancelled"
        elif produced >= options.max_new_tokens and guard.period is None:
            stream.finish_reason = "length"

    def _hf_token_ids(self, ids: list[int], options: GenerationOptions,
                      cancelled: Callable[[], bool], constraint: Any = None) -> Iterator[int]:
        """transformers' ``generate`` in a thread; token ids come back through a queue.
        ``constraint`` masks each step's logits (a logits processor, before temperature,
        top-k and top-p) and advances with each chosen token."""
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        box: queue.Queue[Any] = queue.Queue()
        done = threading.Event()
        seq2seq = self.is_seq2seq

        class _Ids(BaseStreamer):
            first = True

            def put(self, value: Any) -> None:
                if self.first:  # the prompt (or the decoder start token)
                    self.first = False
                    return
                for token in value.reshape(-1).tolist():
                    box.put(int(token))

            def end(self) -> None:
                box.put(None)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                stop = cancelled() or done.is_set()
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

        class _Mask(LogitsProcessor):
            started = False

            def __call__(self, input_ids: Any, scores: Any) -> Any:
                if self.started:  # the token chosen at the last step
                    constraint.advance(int(input_ids[0, -1]))
                self.started = True
                return constraint.mask(scores)

        kwargs = _hf_kwargs(options, self.tokenizer)
        if constraint is not None:
            kwargs["logits_processor"] = LogitsProcessorList([_Mask()])
        tensor = torch.tensor([ids], device=self.model.device)

        def work() -> None:
            try:
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode():
                    self.model.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor), streamer=_Ids(),
                                        stopping_criteria=StoppingCriteriaList([_Stop()]), **kwargs)
            except Exception as exc:  # surfaced to the consumer below
                box.put(exc)
                box.put(None)

        thread = threading.Thread(target=work, name="llmos-generate", daemon=True)
        thread.start()
        try:
            while True:
                item = box.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise BackendError(f"generation failed in {self.name}: {item}") from item
                if seq2seq and item == self.model.config.decoder_start_token_id:
                    continue
                yield item
        finally:
            done.set()
            thread.join()

    def generate_text(self, prompt: str, max_length: int | None = None, *, max_new_tokens: int | None = None,
                      options: GenerationOptions | None = None, **overrides: Any) -> str:
        """Continue ``prompt``. ``max_length`` counts prompt plus reply tokens, as in
        transformers; ``max_new_tokens`` counts the reply only."""
        if max_length is not None and max_new_tokens is None:
            max_new_tokens = max(1, max_length - len(self.encode_prompt(prompt)))
        if max_new_tokens is not None:
            overrides["max_new_tokens"] = max_new_tokens
        return self.stream(prompt, options, **overrides).text()

    def chat(self, messages: Messages, options: GenerationOptions | None = None, **overrides: Any) -> str:
        """Reply to a conversation given as ``[{"role": ..., "content": ...}, ...]``."""
        return self.stream(messages, options, **overrides).text()

    def generate_batch(self, prompts: Sequence[str | Messages], options: GenerationOptions | None = None,
                       **overrides: Any) -> list[str]:
        """Generate for many prompts in one padded batch (transformers ``generate``)."""
        import torch

        options = _options(options, overrides)
        if not prompts:
            return []
        texts = [p if isinstance(p, str) else self.format_chat(p) for p in prompts]
        tok = self.hf_tokenizer
        side = tok.padding_side
        tok.padding_side = "left" if not self.is_seq2seq else "right"
        try:
            specials = [t for t in texts if not (self.has_chat_template and t.startswith(self._template_prefix()))]
            batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=bool(specials))
        finally:
            tok.padding_side = side
        batch = {k: v.to(self.model.device) for k, v in batch.items()}
        self._acquire(None)
        try:
            with torch.inference_mode():
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                out = self.model.generate(**batch, **_hf_kwargs(options, tok))
        finally:
            self._release()
        start = 0 if self.is_seq2seq else batch["input_ids"].shape[1]
        results = []
        for row in out[:, start:]:
            text = tok.decode(row, skip_special_tokens=True)
            for stop in options.stop:
                text = text.split(stop, 1)[0]
            results.append(text)
        return results

    def __repr__(self) -> str:
        return f"LanguageModel({self.name!r}, device={self.device!r}, dtype={self.dtype}, fast={self.fast is not None})"


def _options(options: GenerationOptions | None, overrides: dict[str, Any]) -> GenerationOptions:
    from agent.errors import ConfigError

    try:
        return with_overrides(options or GenerationOptions(), overrides)
    except ValueError as exc:
        raise ConfigError(f"invalid generation options: {exc}") from None


def _hf_kwargs(options: GenerationOptions, tokenizer: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "repetition_penalty": options.repetition_penalty,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if options.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p,
                      top_k=options.top_k or None)
    return kwargs
