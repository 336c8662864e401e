"""@tool: the schema from the signature and docstring, checked arguments, and calls that fail
as results the model reads, never as crashes."""

from __future__ import annotations

import time

import pytest

from agent.errors import ConfigError
from agent.toolcalls import ToolCall
from skills.tools import FunctionTool, load_tools, run_tool, tool
from tests.helpers.tools import order_status


def test_the_schema_comes_from_the_signature_and_the_docstring():
    spec = order_status.spec
    assert spec.name == "order_status" and spec.description == "The shipping status of an order."
    props = spec.parameters["properties"]
    assert spec.parameters["required"] == ["order_id"] and spec.parameters["additionalProperties"] is False
    assert props["order_id"] == {"type": "integer", "minimum": 1, "description": "the number on the order confirmation"}
    assert props["detail"]["enum"] == ["short", "full"] and props["detail"]["default"] == "short"
    assert order_status.spec.openai()["function"]["name"] == "order_status"


def test_calls_are_checked_and_failures_become_results():
    tools = {"order_status": order_status}
    ok = run_tool(tools, ToolCall(name="order_status", arguments={"order_id": 7}))
    assert ok.ok and ok.content == '{"order": 7, "status": "shipped", "detail": "short"}'
    bad = run_tool(tools, ToolCall(name="order_status", arguments={"order_id": 0, "extra": 1}))
    assert not bad.ok and bad.content.startswith("error: invalid arguments for order_status")
    assert "order_id" in bad.content and "extra" in bad.content
    missing = run_tool(tools, ToolCall(name="refund", arguments={}))
    assert not missing.ok and "no tool named 'refund'" in missing.content and "order_status" in missing.content


def test_an_exception_or_a_slow_tool_is_an_error_result_in_time():
    @tool
    def broken(x: int) -> str:
        """Always fails."""
        raise RuntimeError(f"database down ({x})")

    @tool
    def slow(seconds: float) -> str:
        """Sleeps."""
        time.sleep(seconds)
        return "done"

    tools = {"broken": broken, "slow": slow}
    failed = run_tool(tools, ToolCall(name="broken", arguments={"x": 3}))
    assert not failed.ok and failed.content == "error: broken failed: RuntimeError: database down (3)"
    started = time.perf_counter()
    late = run_tool(tools, ToolCall(name="slow", arguments={"seconds": 2.0}), timeout_s=0.2)
    assert not late.ok and "did not answer within 0.2 s" in late.content
    assert time.perf_counter() - started < 1.0
    assert late.record()["ok"] is False and late.record()["name"] == "slow"


def test_bad_tool_definitions_are_refused_with_the_fix():
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    def star(*args: int) -> int:
        return 0

    with pytest.raises(ConfigError, match="needs a type annotation"):
        FunctionTool(untyped)
    with pytest.raises(ConfigError, match=r"\*args"):
        FunctionTool(star)
    with pytest.raises(ConfigError, match="tool name"):
        tool(lambda x: x, name="has space")


def test_load_tools_by_import_path_and_refuses_unknown_names():
    loaded = load_tools(["tests.helpers.tools:order_status"])
    assert list(loaded) == ["order_status"]
    with pytest.raises(ConfigError, match="no tool 'nope'"):
        load_tools(["nope"])
    with pytest.raises(ConfigError, match="cannot load"):
        load_tools(["tests.helpers.tools:missing"])
