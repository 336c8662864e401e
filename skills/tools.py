"""Tools the model may call: ``@tool`` on a typed function, discovery, and running a call safely.

::

    @tool
    def order_status(order_id: int) -> str:
        '''The shipping status of an order.

        Args:
            order_id: the order number on the confirmation email
        '''
        return lookup(order_id)

The JSON schema the model sees comes from the signature through pydantic (types, defaults,
``Annotated[int, Field(ge=1)]`` constraints) and the docstring (the first paragraph describes
the tool; an ``Args:`` section describes each parameter). The arguments the model writes are
validated against the same pydantic model before the function runs; a tool runs with a
timeout, and an exception, a timeout or invalid arguments become a result the model reads
(``error: ...``), never a crash of the turn.

An agent config lists tools by entry point name (group ``llmos.tools``) or import path::

    tools:
      enabled: [order_status, "my_package.tools:weather"]
      timeout_s: 10
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import Any, Protocol, get_type_hints, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agent.errors import ConfigError
from agent.toolcalls import TOOL_NAME_PATTERN, ToolCall, ToolSpec

__all__ = ["GROUP", "Tool", "FunctionTool", "ToolResult", "tool", "run_tool", "load_tools", "direct_reply"]

log = logging.getLogger(__name__)

GROUP = "llmos.tools"

_RESULT_CHARS = 8000
"""A result longer than this reaches the model cut (with a note), so one tool cannot fill the context."""


@runtime_checkable
class Tool(Protocol):
    """Something the model may call: its spec, and how to call it with checked arguments."""

    @property
    def spec(self) -> ToolSpec: ...

    def call(self, arguments: dict[str, Any]) -> Any:
        """Run with ``arguments`` (a JSON object); return anything JSON or str() can render.
        Raise ``ValueError`` (or a pydantic ``ValidationError``) for arguments it refuses."""
        ...


@dataclass(frozen=True)
class ToolResult:
    """One call as it ran: what the model asked, what it got back, how long it took."""

    call: ToolCall
    content: str
    """What the model reads: the result as text (JSON for structured values), or ``error: ...``."""
    ok: bool
    ms: float
    message: str = ""
    """The exception's own message when the tool raised (what a ``return_direct`` tool shows
    the user instead of ``content``'s ``error: ...`` line)."""

    def record(self) -> dict[str, Any]:
        """As stored with the turn and shown in ``llmos ask --json`` (``tool_calls``)."""
        return {"id": self.call.id, "name": self.call.name, "arguments": self.call.arguments,
                "result": self.content, "ok": self.ok, "ms": round(self.ms, 2)}


class FunctionTool:
    """A tool backed by a typed Python function; built by :func:`tool`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                 return_direct: bool = False) -> None:
        self.fn = fn
        self.return_direct = return_direct
        """The result is the reply: the dialogue manager shows what the tool returns (or the
        message of what it raised) instead of handing it back to the model to phrase. For
        lookups whose result a small model would garble (LangChain's ``return_direct``)."""
        name = name or fn.__name__
        if not re.match(TOOL_NAME_PATTERN, name):
            raise ConfigError(f"tool name {name!r} must be letters, digits, _ . - (at most 64), starting with a letter")
        summary, params_doc = _docstring(inspect.getdoc(fn) or "")
        self.arguments_model = _arguments_model(fn, name, params_doc)
        schema = self.arguments_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        self._spec = ToolSpec(name=name, description=description or summary, parameters=schema)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def call(self, arguments: dict[str, Any]) -> Any:
        checked = self.arguments_model.model_validate(arguments)
        return self.fn(**{k: getattr(checked, k) for k in type(checked).model_fields})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (handy in tests)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionTool({self._spec.name!r})"


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None, return_direct: bool = False) -> Any:
    """Build a :class:`FunctionTool` (``@tool`` or ``@tool(name=..., description=...,
    return_direct=...)``)."""
    if fn is not None:
        return FunctionTool(fn, name=name, description=description, return_direct=return_direct)
    return lambda f: FunctionTool(f, name=name, description=description, return_direct=return_direct)


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and ``Args:`` entries by parameter name (Google style)."""
    paragraphs = doc.split("\n\n")
    summary = " ".join(paragraphs[0].split()) if paragraphs and paragraphs[0].strip() else ""
    params: dict[str, str] = {}
    match = re.search(r"^(?:Args|Arguments|Parameters):\s*\n(.*?)(?:\n\S|\Z)", doc, re.S | re.M)
    if match:
        current = None
        for line in match.group(1).splitlines():
            entry = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)", line)
            if entry and (current is None or len(line) - len(line.lstrip()) <= 4):
                current = entry.group(1)
                params[current] = entry.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    return summary, params


def _arguments_model(fn: Callable[..., Any], name: str, docs: Mapping[str, str]) -> type[BaseModel]:
    from pydantic import Field

    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {name!r}: *args/**kwargs cannot be described to a model; name each parameter")
        if param.name not in hints:
            raise ConfigError(f"tool {name!r}: parameter {param.name!r} needs a type annotation (the model is "
                              "told the types)")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], Field(default, description=docs.get(param.name)))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return model


def run_tool(tools: Mapping[str, Tool], call: ToolCall, *, timeout_s: float = 10.0) -> ToolResult:
    """Run one call: unknown tools, invalid arguments, exceptions and timeouts become an
    ``error: ...`` result the model reads (and ``ok=False``), never an exception."""
    started = time.perf_counter()
    target = tools.get(call.name)
    if target is None:
        return _result(call, f"error: there is no tool named {call.name!r}; the tools are "
                             f"{', '.join(sorted(tools)) or 'none'}", False, started)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tool-{call.name}")
    try:
        future = pool.submit(target.call, dict(call.arguments))
        try:
            value = future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            log.warning("tool %s did not answer within %.1f s", call.name, timeout_s)
            return _result(call, f"error: the tool {call.name} did not answer within {timeout_s:g} s", False, started)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                                 for e in exc.errors())
            return _result(call, f"error: invalid arguments for {call.name}: {problems}", False, started)
        except Exception as exc:  # the tool's own failure is a result, not a crash
            log.info("tool %s failed: %s", call.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return _result(call, f"error: {call.name} failed: {type(exc).__name__}: {exc}", False, started,
                           message=str(exc))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung tool keeps its thread, not the turn
    return _result(call, _render(value), True, started)


def _render(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, BaseModel):
        text = value.model_dump_json()
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > _RESULT_CHARS:
        text = text[:_RESULT_CHARS] + f"... [cut: {len(text) - _RESULT_CHARS} more characters]"
    return text


def _result(call: ToolCall, content: str, ok: bool, started: float, *, message: str = "") -> ToolResult:
    return ToolResult(call, content, ok, (time.perf_counter() - started) * 1000, message)


def direct_reply(tools: Mapping[str, Tool], results: Sequence[ToolResult]) -> str | None:
    """The reply when every call of a round went to a ``return_direct`` tool: the results
    as the user reads them (a failed call: its exception's message), one per line; else None
    (the model reads the results and answers)."""
    if not results or not all(getattr(tools.get(r.call.name), "return_direct", False) for r in results):
        return None
    return "\n".join(r.content if r.ok else (r.message or r.content) for r in results)


def load_tools(names: Iterable[str]) -> dict[str, Tool]:
    """The tools ``names`` list: entry points of the ``llmos.tools`` group by name, or import
    paths ``module:attribute``. An attribute may be a :class:`Tool`, a plain typed function
    (wrapped with :func:`tool`), or a list of either. Raises :class:`ConfigError` naming what
    could not be found (a configured tool that silently vanished would change answers)."""
    wanted = list(names)
    if not wanted:
        return {}
    points = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
    out: dict[str, Tool] = {}
    for name in wanted:
        try:
            if ":" in name:
                module, _, attr = name.partition(":")
                target = getattr(import_module(module), attr)
            elif name in points:
                target = points[name].load()
            else:
                raise ConfigError(f"no tool {name!r}: name an entry point of the {GROUP!r} group "
                                  f"({', '.join(sorted(points)) or 'none installed'}) or an import path module:function")
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load the tool {name!r}: {exc}") from exc
        for item in target if isinstance(target, (list, tuple)) else [target]:
            loaded = item if isinstance(item, Tool) else FunctionTool(item) if callable(item) else None
            if loaded is None:
                raise ConfigError(f"{name!r} is not a tool (a @tool function, a Tool object, or a typed function)")
            if loaded.spec.name in out:
                raise ConfigError(f"two tools are named {loaded.spec.name!r}: rename one with @tool(name=...)")
            out[loaded.spec.name] = loaded
    return out
