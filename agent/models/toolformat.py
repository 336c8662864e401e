"""Tool calls in the model's own words: describing tools, rendering history, parsing replies.

One format for every local model, Qwen2.5's (Hermes-style)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

- A model whose chat template takes ``tools`` (Qwen2.5, Llama 3.1, Mistral...) gets them
  through ``apply_chat_template(tools=...)`` and its template renders the history.
- A model whose template does not (SmolLM2) gets a short description of the tools and the
  format in its system message (:func:`tool_prompt`, wording measured on the 135M, see
  docs/models.md), assistant calls written into the assistant turn as above and tool results
  as a user turn of ``<tool_response>`` blocks (Qwen's convention).

:class:`ToolCallFilter` takes the reply's text apart as it streams: the text around the
calls passes through, each ``<tool_call>`` block becomes a :class:`~agent.toolcalls.ToolCall`
when its JSON parses and its arguments satisfy the tool's schema; a block that does not
(only possible unconstrained) is passed through as text, so nothing the model wrote is lost.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.models.schemacheck import schema_errors
from agent.models.textstream import IncrementalDecoder, StopStringFilter
from agent.toolcalls import ToolCall, ToolSpec

if TYPE_CHECKING:
    from agent.models.textstream import TextStream

__all__ = ["OPEN", "CLOSE", "TOOL_STYLES", "DEFAULT_STYLE", "MEASURED_TOOL_BIAS", "tool_bias", "template_takes_tools", "tool_prompt", "render_messages",
           "call_block", "parse_call", "parse_reply", "ToolCallFilter", "stream_with_tools", "offered"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"

MEASURED_TOOL_BIAS: dict[str, dict[str, float]] = {
    # The 135M almost never opens a call on its own (0 of 60 tuning items that needed one)
    # and, once calling, goes on calling (7 of 20 "multiple" items got extra calls).
    "smollm2-135m": {"open": -6.2, "stop": 4.0},
}
"""Per model (preset name): ``open``, the least log-probability of the first token of
``<tool_call>`` at the start of an ``auto`` reply for the reply to open with a call; ``stop``,
added to EOS's logit right after a complete call (see :class:`~agent.models.constrain.
Constraint`). Measured on a BFCL tuning slice (the first 20 items of each category), see
docs/models.md "Tool calling"."""


def tool_bias(name: str) -> dict[str, float]:
    """The measured calibration for the model called ``name`` (empty: none)."""
    return dict(MEASURED_TOOL_BIAS.get(name.lower(), {}))


DEFAULT_STYLE = "compact"
"""The wording :func:`tool_prompt` uses unless told otherwise (chosen on a BFCL tuning slice
with the 135M, see docs/models.md "Tool calling")."""


def _signature(tool: ToolSpec) -> str:
    props = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    parts = []
    for name, schema in props.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        parts.append(f"{name}{'' if name in required else '?'}: {kind if isinstance(kind, str) else '|'.join(kind)}")
    return f"{tool.name}({', '.join(parts)})"


def _tool_json(tool: ToolSpec) -> str:
    return json.dumps({"name": tool.name, "description": tool.description, "parameters": tool.parameters},
                      ensure_ascii=False)


def _style_qwen(tools: Sequence[ToolSpec]) -> str:
    listing = "\n".join(json.dumps(t.openai(), ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            f"{listing}\n</tools>\n\nFor each function call, return a json object with function name and arguments "
            "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def _style_json(tools: Sequence[ToolSpec]) -> str:
    listing = "\n".join(_tool_json(t) for t in tools)
    return ("You can call these functions:\n"
            f"{listing}\n\n"
            "To call a function, reply with only:\n<tool_call>\n"
            '{"name": "function_name", "arguments": {"parameter": "value"}}\n</tool_call>\n'
            "If no function fits the request, answer in plain text.")


def _style_compact(tools: Sequence[ToolSpec]) -> str:
    listing = "\n".join(f"- {_signature(t)}: {t.description}".rstrip(": ") for t in tools)
    return ("You can call these functions:\n"
            f"{listing}\n\n"
            "To call one, reply with only:\n<tool_call>\n"
            '{"name": "function_name", "arguments": {"parameter": "value"}}\n</tool_call>\n'
            "If no function fits the request, answer in plain text.")


def _style_example(tools: Sequence[ToolSpec]) -> str:
    listing = "\n".join(_tool_json(t) for t in tools)
    first = tools[0]
    props = list((first.parameters.get("properties") or {}).keys())[:2]
    example = json.dumps({"name": first.name, "arguments": {p: "..." for p in props}}, ensure_ascii=False)
    return ("You are a function calling assistant. Functions:\n"
            f"{listing}\n\n"
            f"Call a function like this:\n<tool_call>\n{example}\n</tool_call>\n"
            "Use the values from the user's message. If no function fits, answer in plain text.")


TOOL_STYLES = {"json": _style_json, "qwen": _style_qwen, "compact": _style_compact, "example": _style_example}
"""Ways to describe tools to a model whose chat template cannot (by name)."""


def template_takes_tools(tokenizer: Any) -> bool:
    """True when the tokenizer's chat template renders a ``tools`` list itself."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def tool_prompt(tools: Sequence[ToolSpec], style: str = DEFAULT_STYLE) -> str:
    """The system-message block describing ``tools`` and the call format."""
    try:
        return TOOL_STYLES[style](tools)
    except KeyError:
        raise ValueError(f"unknown tool prompt style {style!r}; use one of {', '.join(TOOL_STYLES)}") from None


def call_block(name: str, arguments: Any) -> str:
    """One call as the model writes it."""
    return f"{OPEN}\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n{CLOSE}"


def _arguments(raw: Any) -> Any:
    """A history call's arguments as an object (OpenAI sends a JSON string)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw
    return raw if raw is not None else {}


def _calls_of(message: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for call in message.get("tool_calls") or []:
        if isinstance(call, ToolCall):
            out.append((call.name, call.arguments))
            continue
        fn = call.get("function", call) if isinstance(call, Mapping) else {}
        out.append((str(fn.get("name", "")), _arguments(fn.get("arguments"))))
    return out


def render_messages(messages: Sequence[Mapping[str, Any]], tools: Sequence[ToolSpec] = (), tool_choice: str = "auto", *,
                    template_tools: bool = False, style: str = DEFAULT_STYLE
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """``messages`` (OpenAI-style, with ``tool_calls`` and ``tool`` turns) made ready for the
    model's chat template, and the ``tools`` argument to pass it (None: none).

    Plain ``role``/``content`` messages come back unchanged, so a conversation without tools
    renders exactly as before. ``template_tools``: the template takes ``tools`` and renders
    calls and results itself (they are only normalised: arguments as objects, no None
    content); otherwise calls are written into the assistant turn, results become a user turn
    of ``<tool_response>`` blocks and the tools are described in the system message."""
    describe = bool(tools) and tool_choice != "none"
    if template_tools:
        out = []
        for m in messages:
            m = dict(m)
            if m.get("content") is None:
                m["content"] = ""
            if m.get("tool_calls"):
                m["tool_calls"] = [{"type": "function", "function": {"name": n, "arguments": a}}
                                   for n, a in _calls_of(m)]
            out.append(m)
        return out, ([t.openai() for t in tools] if describe else None)
    plain: list[dict[str, Any]] = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        text = content if isinstance(content, str) else ("" if content is None else str(content))
        if role == "assistant" and m.get("tool_calls"):
            blocks = "\n".join(call_block(n, a) for n, a in _calls_of(m))
            plain.append({"role": "assistant", "content": f"{text}\n{blocks}" if text else blocks})
        elif role == "tool":
            block = f"<tool_response>\n{text}\n</tool_response>"
            if plain and plain[-1].get("_tool"):
                plain[-1]["content"] += "\n" + block
            else:
                plain.append({"role": "user", "content": block, "_tool": True})
        elif set(m) <= {"role", "content"} and isinstance(content, str):
            plain.append(dict(m))
        else:
            plain.append({"role": str(role), "content": text})
    for m in plain:
        m.pop("_tool", None)
    if describe:
        block = tool_prompt(tools, style)
        if plain and plain[0].get("role") == "system" and plain[0].get("content"):
            plain[0] = {"role": "system", "content": f"{plain[0]['content']}\n\n{block}"}
        elif plain and plain[0].get("role") == "system":
            plain[0] = {"role": "system", "content": block}
        else:
            plain.insert(0, {"role": "system", "content": block})
    return plain, None


def offered(tools: Sequence[ToolSpec], tool_choice: str) -> list[ToolSpec]:
    """The tools a reply may call under ``tool_choice`` (none for ``none``)."""
    if tool_choice == "none":
        return []
    if tool_choice in ("auto", "required"):
        return list(tools)
    return [t for t in tools if t.name == tool_choice]


def parse_call(body: str, tools: Sequence[ToolSpec]) -> ToolCall | str:
    """The call in one ``<tool_call>`` block's ``body``, or why it is not one (a string)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return 'not {"name": ..., "arguments": {...}}'
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return "arguments are a string that is not JSON"
    if not isinstance(args, dict):
        return "arguments are not an object"
    tool = next((t for t in tools if t.name == data["name"]), None)
    if tool is None:
        return f"{data['name']!r} is not an offered tool"
    problems = schema_errors(args, tool.parameters)
    if problems:
        return "; ".join(problems)
    return ToolCall(name=tool.name, arguments=args)


class ToolCallFilter:
    """Splits streamed reply text into text and calls (``calls``, ``errors`` of blocks that
    were passed through as text). Whitespace between and around calls is dropped.

    A call that repeats an earlier one of the same reply exactly (name and arguments) is
    dropped and sets ``repeated``: small models asked for parallel calls tend to write the
    same call again and again, and the caller ends the reply there."""

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        self.tools = list(tools)
        self.calls: list[ToolCall] = []
        self.errors: list[str] = []
        self._buf = ""
        self._inside = False
        self._space = ""  # whitespace held until text follows it
        self._scan = 0  # inside a call: where to look for the closing tag next
        self.repeated = False

    def _text(self, text: str) -> str:
        """Text to pass on; trailing whitespace waits to see whether a call follows it."""
        if not text:
            return ""
        body = text.rstrip()
        if not body:
            self._space += text
            return ""
        out, self._space = self._space + body, text[len(body):]
        return out

    def feed(self, piece: str) -> str:
        self._buf += piece
        out = []
        while True:
            if self._inside:
                # the call ends at the first closing tag after complete JSON: a string value
                # may hold "</tool_call>" itself
                end = self._buf.find(CLOSE, self._scan)
                while end >= 0 and not _complete_json(self._buf[:end]):
                    end = self._buf.find(CLOSE, end + 1)
                if end < 0:
                    self._scan = max(0, len(self._buf) - len(CLOSE) + 1)
                    break
                body, self._buf, self._inside, self._scan = self._buf[:end], self._buf[end + len(CLOSE):], False, 0
                out.append(self._finish(body, closed=True))
                continue
            start = self._buf.find(OPEN)
            if start >= 0:
                out.append(self._text(self._buf[:start]))
                self._buf, self._inside = self._buf[start + len(OPEN):], True
                self._space = ""  # whitespace before a call is dropped
                continue
            hold = next((n for n in range(min(len(OPEN) - 1, len(self._buf)), 0, -1)
                         if self._buf.endswith(OPEN[:n])), 0)
            out.append(self._text(self._buf[:len(self._buf) - hold]))
            self._buf = self._buf[len(self._buf) - hold:]
            break
        return "".join(out)

    def _finish(self, body: str, *, closed: bool) -> str:
        result = parse_call(body.strip(), self.tools)
        if isinstance(result, ToolCall):
            if any(c.name == result.name and c.arguments == result.arguments for c in self.calls):
                self.repeated = True
            else:
                self.calls.append(result)
            return ""
        self.errors.append(result)
        return self._text(OPEN + body + (CLOSE if closed else ""))

    def flush(self) -> str:
        """The end of the reply: an unclosed call is taken if its JSON is complete, else
        passed through as text."""
        out = ""
        if self._inside and CLOSE in self._buf:
            # no closing tag followed complete JSON: the block ends at the first one (not a
            # call) and what follows it is read again
            end = self._buf.index(CLOSE)
            body, rest = self._buf[:end], self._buf[end + len(CLOSE):]
            self._buf, self._inside, self._scan = "", False, 0
            out = self._finish(body, closed=True) + self.feed(rest)
        if self._inside:
            out += self._finish(self._buf, closed=False)
        else:
            out += self._text(self._buf)
        self._buf, self._inside, self._scan = "", False, 0
        if not self.calls:
            out += self._space
        self._space = ""
        return out


def _complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def parse_reply(text: str, tools: Sequence[ToolSpec]) -> tuple[str, list[ToolCall], list[str]]:
    """A whole reply split into its text, its calls and the errors of blocks kept as text."""
    f = ToolCallFilter(tools)
    rest = f.feed(text) + f.flush()
    return rest, f.calls, f.errors


def stream_with_tools(token_ids: Iterable[int], tokenizer: Any, stops: Sequence[str], tools: Sequence[ToolSpec],
                      ref: weakref.ref[TextStream]) -> Iterator[str]:
    """:func:`~agent.models.textstream.stream_text` for a reply that may call ``tools``: the
    calls go to the stream's ``tool_calls`` (``finish_reason`` ``tool_calls``) and the text
    around them is yielded. Stop strings apply to that text only, never inside a call."""
    decoder = IncrementalDecoder(tokenizer)
    calls = ToolCallFilter(tools)
    stop = StopStringFilter(stops)
    ids = iter(token_ids)
    try:
        for token_id in ids:
            piece = stop.feed(calls.feed(decoder.push(token_id)))
            if piece:
                yield piece
            if stop.stopped:
                break
            if calls.repeated:  # the model went round again: the reply ends with its calls
                tail = stop.feed(calls.flush()) + stop.flush()
                if tail:
                    yield tail
                break
        else:
            tail = stop.feed(calls.feed(decoder.flush()) + calls.flush()) + stop.flush()
            if tail:
                yield tail
    finally:
        close = getattr(ids, "close", None)
        if close is not None:
            close()
        stream = ref()
        if stream is not None:
            stream.tool_calls = list(calls.calls)
            if calls.calls and stream.finish_reason in (None, "stop") and not stream.cancelled:
                stream.finish_reason = "tool_calls"
