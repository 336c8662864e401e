"""The insight panel lists a turn's tool calls: name, arguments, time and result, as plain
text (a tool's output is never markup or a terminal sequence)."""

from __future__ import annotations

from tui.widgets.insight import InsightPanel


def test_tool_calls_are_listed_one_line_each_and_neutralized():
    lines = InsightPanel._tool_lines([
        {"name": "order_status", "arguments": {"order_id": 4417}, "result": '{"status": "shipped"}', "ok": True,
         "ms": 3.4},
        {"name": "weather", "arguments": {"city": "[b]Lyon[/b]"}, "result": "error: down\x1b[2J\nsecond line",
         "ok": False, "ms": 10000.0},
    ])
    assert lines[0] == "tools      2 calls"
    assert lines[1] == "  ok  order_status(order_id=4417) 3 ms"
    assert lines[2] == '      -> {"status": "shipped"}'
    assert lines[3] == "  err weather(city='[b]Lyon[/b]') 10000 ms"
    assert "\x1b" not in lines[4] and "\n" not in lines[4] and lines[4].startswith("      -> error: down")
    assert InsightPanel._tool_lines([]) == []
