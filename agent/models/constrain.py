"""Constrained decoding: only tokens a grammar allows, with llguidance.

The grammar says what the reply may be (:func:`reply_grammar`):

- ``tool_choice`` ``required`` or a tool's name: one ``<tool_call>`` block (several when
  parallel calls are allowed) whose JSON is ``{"name": NAME, "arguments": ...}`` with the
  arguments satisfying that tool's schema;
- ``auto``: free text (never containing ``<tool_call>``), or text up to a ``<tool_call>``
  tag (a lazy lexeme: the first occurrence ends it), after which the call is constrained
  as above;
- ``none``: no constraint; ``response_format`` ``json_object``/``json_schema``: the whole
  reply is JSON (of that schema).

JSON is written compactly the way :func:`json.dumps` writes it (``", "`` and ``": "``,
no other whitespace), so a small model cannot wander off into whitespace, and objects that
list their ``properties`` take no others unless the schema says ``additionalProperties``
(OpenAI's strict mode does the same).

:class:`Constraint` is what the decoders hold: it masks a step's logits (disallowed tokens to
-inf; EOS only where the grammar may end) and advances with the chosen token. A greedy step
first asks whether the unconstrained choice is allowed (one check in the matcher, no mask):
it usually is, and then the mask is never built.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import InputError, ModelError
from agent.toolcalls import ResponseFormat, ToolSpec

if TYPE_CHECKING:
    import torch

__all__ = ["Constraint", "closing_tokens", "special_tokens", "reply_grammar", "call_schema", "strict_schema", "ll_tokenizer", "JSON_STYLE"]

JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ", "lenient": True}
"""llguidance's JSON settings (``x-guidance``): json.dumps's separators, no free whitespace,
schema keywords it does not know are ignored rather than refused."""


def strict_schema(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its
    ``properties`` and says nothing about others (a copy; the input is left alone)."""
    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: (walk(v) if k not in ("enum", "const", "default", "examples") else v) for k, v in node.items()}
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: walk(v) for k, v in node["properties"].items()}
            out.setdefault("additionalProperties", False)
        return out

    return walk(copy.deepcopy(schema))


def call_schema(tool: ToolSpec) -> dict[str, Any]:
    """The JSON inside one ``<tool_call>`` block calling ``tool``."""
    return {"type": "object", "properties": {"name": {"const": tool.name},
                                             "arguments": strict_schema(tool.parameters)},
            "required": ["name", "arguments"], "additionalProperties": False}


def _json_rule(schema: dict[str, Any]) -> str:
    return "%json " + json.dumps({**schema, "x-guidance": JSON_STYLE}, ensure_ascii=False)


def reply_grammar(tools: Sequence[ToolSpec] = (), tool_choice: str = "auto",
                  response_format: ResponseFormat | None = None, *, parallel: bool = True,
                  tag_ids: Mapping[str, int] | None = None) -> str | None:
    """The Lark grammar (llguidance's dialect) a reply must follow, or None for free text.

    ``tag_ids``: the ids of ``<tool_call>`` / ``</tool_call>`` where the tokenizer has them as
    single special tokens (Qwen2.5): the grammar then takes the token as well as the text."""
    if tools and tool_choice != "none":
        if tool_choice in ("auto", "required"):
            chosen = list(tools)
        else:
            chosen = [t for t in tools if t.name == tool_choice]
            if not chosen:
                raise InputError(f"tool_choice names {tool_choice!r}, which is not among the offered tools")
        tags = dict(tag_ids or {})
        special_open = f"<[{tags['<tool_call>']}]>" if "<tool_call>" in tags else None
        open_rule = 'open: "<tool_call>"' + (f" | {special_open}" if special_open else "")
        close_rule = 'close: "</tool_call>"' + (f" | <[{tags['</tool_call>']}]>" if "</tool_call>" in tags else "")
        bodies = "\n".join(f"c{i}: {_json_rule(call_schema(t))}" for i, t in enumerate(chosen))
        one = " | ".join(f"c{i}" for i in range(len(chosen)))
        more = '("\\n" open body)*' if parallel else ""
        rules = (f'body: "\\n" ({one}) "\\n" close\n{open_rule}\n{close_rule}\n' + bodies + "\n")
        if tool_choice == "auto":
            special = f" | TEXT {special_open} body {more}" if special_open else ""
            return ("%llguidance {}\n"
                    f"start: TEXT | pre body {more}{special}\n"
                    "TEXT: /(.|\\n)*/ & ~/(.|\\n)*<tool_call>(.|\\n)*/\n"
                    'pre[lazy]: /(.|\\n)*/ "<tool_call>"\n' + rules)
        return "%llguidance {}\n" f"start: open body {more}\n" + rules
    if response_format is not None and response_format.type != "text":
        schema = response_format.schema_ if response_format.type == "json_schema" else None
        if response_format.type == "json_schema" and not isinstance(schema, dict):
            raise InputError("response_format json_schema needs a schema")
        return f"start: {_json_rule(strict_schema(schema) if schema else {'type': 'object'})}\n"
    return None


def ll_tokenizer(tokenizer: Any, vocab_size: int, eos_ids: Iterable[int]) -> Any:
    """An llguidance tokenizer for ``tokenizer`` (a transformers fast tokenizer or a
    :class:`~agent.models.tokenizer.LeanTokenizer`), with ``vocab_size`` mask entries (the
    model's logits may be wider than the tokenizer) and the model's EOS ids. ~0.3 s for a
    50k vocabulary, ~0.6 s for 150k: build it once per model."""
    import llguidance

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend = copy.copy(backend)
        backend.no_padding()
        backend.no_truncation()
        text = backend.to_str()
    elif getattr(tokenizer, "folder", None) is not None and (Path(tokenizer.folder) / "tokenizer.json").is_file():
        text = (Path(tokenizer.folder) / "tokenizer.json").read_text(encoding="utf-8")
    else:
        raise ModelError("constrained decoding needs a tokenizers-backed (fast) tokenizer with a tokenizer.json; "
                         f"{type(tokenizer).__name__} has none")
    eos = sorted({int(t) for t in eos_ids})
    return llguidance.LLTokenizer(text, n_vocab=int(vocab_size), eos_token=eos or None)


class Constraint:
    """One reply's grammar state: masks logits and advances with each chosen token.

    Not thread-safe; one per generation. ``grammar`` is a Lark grammar from
    :func:`reply_grammar`; ``tokenizer`` one from :func:`ll_tokenizer`.

    Two things keep a constrained reply whole when a small model misbehaves: with a
    ``budget`` (the reply's token limit) the last :data:`RESERVE` tokens *wrap up* an
    unfinished reply, and the decoder sets ``wrap_up`` itself when the reply falls into a
    loop. Wrapping up prefers, among the allowed tokens, those made only of ``"``, ``]``,
    ``}`` (and EOS), then those with a comma: strings, arrays and objects close, the rest of
    the grammar is forced, and the reply ends valid instead of cut off (``closers``, from
    :func:`closing_tokens`).

    Calibration for a small model in ``auto`` mode, which left alone almost never opens a
    call: with ``open_logprob`` the reply opens with a call (``open_ids``: the first token of
    ``<tool_call>``) when the model gives that token at least this log-probability at the
    first step, and is left to the model otherwise; ``stop_bias`` is added to EOS's logit
    right after a complete call (a small model goes on calling).
    """

    RESERVE = 24
    """The least number of tokens kept for wrapping up."""

    def __init__(self, tokenizer: Any, grammar: str, *, budget: int | None = None, closers: Any = None,
                 reserve: int | None = None, open_ids: Sequence[int] = (), open_logprob: float | None = None,
                 stop_bias: float = 0.0, special_ids: Sequence[int] = ()) -> None:
        import llguidance
        import torch

        self.matcher = llguidance.LLMatcher(tokenizer, llguidance.grammar_from("lark", grammar), log_level=0)
        if self.matcher.is_error():
            raise InputError(f"the reply's grammar does not compile: {self.matcher.get_error()}")
        self._tok = tokenizer
        self.vocab_size = int(tokenizer.vocab_size)
        self._words = torch.zeros((self.vocab_size + 31) // 32, dtype=torch.int32)
        self._shifts = torch.arange(32, dtype=torch.int32)
        self.budget = budget
        self.reserve = max(self.RESERVE, reserve or 0, 12 + len(tokenizer.tokenize_str("\n</tool_call>")))
        """Tokens kept at the end of the budget for wrapping up: in them an unfinished reply is
        closed, and no call starts after a finished one (pass the tokens of the longest
        shortest call as ``reserve``)."""
        self.closers = closers
        self.special_ids = list(special_ids)
        eos = set(tokenizer.eos_tokens)  # the mask's word on EOS is the one to trust
        self._special = torch.tensor([t for t in self.special_ids if t < self.vocab_size and t not in eos],
                                     dtype=torch.long)
        """The tokenizer's special tokens: llguidance's mask can admit one whose text fits where
        the grammar wants that text, though the matcher then refuses it; each is checked."""
        self.open_ids = list(open_ids)
        self.open_logprob = open_logprob
        self.opened: bool | None = None
        """Whether the calibrated first step opened a call (None: no such step was taken)."""
        self.stop_bias = float(stop_bias)
        self._eos = list(tokenizer.eos_tokens)
        self.wrap_up = False
        """Set to close the reply as soon as the grammar allows (see the class notes)."""
        self.steps = 0
        self._tail = b""
        self.masked_steps = 0
        """Steps whose full mask was built (a greedy step whose first choice is allowed needs none)."""
        self.seconds = 0.0
        """Time spent in :meth:`choose` on the constraint's own work (checks, masks, advancing)."""

    # -- state -------------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        """The reply may end here."""
        return bool(self.matcher.is_accepting())

    @property
    def finished(self) -> bool:
        """Nothing but EOS may follow."""
        return bool(self.matcher.is_stopped())

    def _adjusting(self) -> bool:
        """Whether this step's logits need more than the mask (a bias or wrapping up)."""
        after_call = self._tail.endswith(b"</tool_call>")
        if self.budget is not None and not self.wrap_up and self.budget - self.steps <= self.reserve \
                and (after_call or not self.accepting):
            self.wrap_up = True
        return (self.wrap_up or (self.steps == 0 and self.open_logprob is not None and bool(self.open_ids))
                or (self.stop_bias != 0.0 and after_call))

    def allows(self, token: int) -> bool:
        """Whether ``token`` may come next (without building the mask)."""
        return bool(self.matcher.validate_tokens([int(token)]) == 1) and not self.matcher.is_error()

    def allowed(self) -> torch.Tensor:
        """A bool vector over the vocabulary: the tokens that may come next."""
        import torch

        words = self._words
        self.matcher.unsafe_compute_mask_ptr(words.data_ptr(), words.numel() * 4)
        if self.matcher.is_error():
            raise ModelError(f"constrained decoding failed: {self.matcher.get_error()}")
        self.masked_steps += 1
        bits = torch.bitwise_and(torch.bitwise_right_shift(words.unsqueeze(1), self._shifts), 1)
        allowed = bits.view(-1)[: self.vocab_size].bool()
        if self._special.numel():
            for token in self._special[allowed[self._special]].tolist():
                if not self.allows(token):
                    allowed[token] = False
        return allowed

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (one row, or a ``(1, vocab)`` batch) with disallowed tokens at -inf and
        this step's biases applied (a new tensor)."""
        import torch

        allowed = self.allowed()
        n = logits.shape[-1]
        if n > self.vocab_size:
            allowed = torch.cat([allowed, allowed.new_zeros(n - self.vocab_size)])
        elif n < self.vocab_size:
            allowed = allowed[:n]
        if allowed.device != logits.device:
            allowed = allowed.to(logits.device)
        out = logits.masked_fill(~allowed, float("-inf"))
        if not self._adjusting():
            return out
        flat = out.view(-1, n)
        if self.steps == 0 and self.open_logprob is not None and self.open_ids:
            opening = torch.log_softmax(logits.view(-1, n)[0].float(), -1)[self.open_ids]
            self.opened = bool(opening.max() >= self.open_logprob)
            if self.opened:
                best = self.open_ids[int(opening.argmax())]
                keep = flat[:, best].clone()
                flat.fill_(float("-inf"))
                flat[:, best] = keep
        if self.stop_bias and self._tail.endswith(b"</tool_call>"):
            flat[:, [e for e in self._eos if e < n]] += self.stop_bias
        if self.wrap_up and self.closers is not None:
            bonus = self.closers[:n].to(logits.device) * allowed
            if bool(bonus.any()):
                flat += (bonus * 1e4).to(flat.dtype)
        return out

    def advance(self, token: int) -> None:
        """Take ``token`` as the next one of the reply."""
        if not self.matcher.consume_token(int(token)):
            raise ModelError(f"constrained decoding: token {int(token)} broke the grammar "
                             f"({self.matcher.get_error() or 'not allowed here'})")
        self.steps += 1
        self._tail = (self._tail + self._tok.decode_bytes([int(token)]))[-16:]

    def choose(self, logits: torch.Tensor, greedy: bool, draw: Any) -> int:
        """The next token: the argmax when greedy (masked only if the unconstrained argmax
        is not allowed or this step is biased), else ``draw(masked_logits)``; the matcher
        advances with it."""
        import torch

        began = time.perf_counter()
        if greedy:
            token = int(torch.argmax(logits))
            if self._adjusting() or not self.allows(token):
                token = int(torch.argmax(self.mask(logits)))
            self.advance(token)
            self.seconds += time.perf_counter() - began
        else:
            masked = self.mask(logits)
            self.seconds += time.perf_counter() - began
            token = int(draw(masked))  # the sampling itself is not the constraint's cost
            self.advance(token)
        return token


def special_tokens(tokenizer: Any) -> list[int]:
    """The ids of ``tokenizer``'s (llguidance) special tokens."""
    return [i for i in range(int(tokenizer.vocab_size)) if tokenizer.is_special_token(i)]


def closing_tokens(tokenizer: Any) -> torch.Tensor:
    """A preference over ``tokenizer``'s (llguidance) vocabulary for wrapping a reply up: among
    tokens made only of ``"],}``, 3 for those that start with ``"`` (close the string first:
    inside one, ``]`` and ``}`` are just text), 2 for the other ones without a comma (and
    EOS), 1 for those with one (a value that cannot close yet moves on to the next, required,
    key), 0 for the rest.
    ~50 ms for 50k tokens."""
    import torch

    out = torch.zeros(int(tokenizer.vocab_size))
    for i in range(int(tokenizer.vocab_size)):
        text = tokenizer.decode_bytes([i])
        if not text or text.strip(b'"],}') or tokenizer.is_special_token(i):
            continue
        out[i] = 1.0 if b"," in text else 3.0 if text.startswith(b'"') else 2.0
    for e in tokenizer.eos_tokens:
        out[int(e)] = 2.0
    return out
