"""Tool calls in the model's words: describing tools, rendering history, parsing replies and
the schema check (no model needed)."""

import json
import weakref

import pytest

from agent.models.schemacheck import schema_errors
from agent.models.textstream import TextStream
from agent.models.toolformat import (
    CLOSE,
    OPEN,
    ToolCallFilter,
    call_block,
    parse_call,
    parse_reply,
    render_messages,
    stream_with_tools,
    template_takes_tools,
    tool_prompt,
)
from agent.toolcalls import ToolCall, ToolSpec

WEATHER = ToolSpec(name="get_weather", description="Weather in a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"},
                                                                "days": {"type": "integer", "minimum": 1}},
                               "required": ["city"]})
CALL = call_block("get_weather", {"city": "Paris"})


def test_plain_messages_render_unchanged():
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert render_messages(messages) == (messages, None)
    assert render_messages(messages, [WEATHER], "none") == (messages, None)


def test_tools_go_into_the_system_message_of_a_model_whose_template_cannot_take_them():
    rendered, tools = render_messages([{"role": "user", "content": "weather?"}], [WEATHER])
    assert tools is None and rendered[0]["role"] == "system"
    assert "get_weather" in rendered[0]["content"] and OPEN in rendered[0]["content"]
    rendered, _ = render_messages([{"role": "system", "content": "You are Bob."}, {"role": "user", "content": "x"}],
                                  [WEATHER], "required")
    assert rendered[0]["content"].startswith("You are Bob.\n\n") and len(rendered) == 2
    for style in ("json", "qwen", "compact", "example"):
        assert "get_weather" in tool_prompt([WEATHER], style)
    with pytest.raises(ValueError):
        tool_prompt([WEATHER], "nope")


def test_calls_and_results_in_the_history_render_in_the_models_format():
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    history = [{"role": "user", "content": "weather in Paris and Oslo?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   call.openai(),
                   {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
               {"role": "tool", "tool_call_id": "call_2", "content": "rain"}]
    rendered, _ = render_messages(history)
    assert rendered[1] == {"role": "assistant",
                           "content": CALL + "\n" + call_block("get_weather", {"city": "Oslo"})}
    assert rendered[2] == {"role": "user",
                           "content": "<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrain\n</tool_response>"}
    assert len(rendered) == 3
    # a template that takes tools gets them as objects, the arguments parsed, no None content
    native, tools = render_messages(history, [WEATHER], template_tools=True)
    assert tools == [WEATHER.openai()]
    assert native[1]["content"] == "" and native[1]["tool_calls"][1] == {
        "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    assert native[2] == history[2]


def test_template_detection():
    class Tok:
        chat_template = "{% if tools %}...{% endif %}"
    assert template_takes_tools(Tok())
    Tok.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert not template_takes_tools(Tok())


def test_parse_call_checks_json_name_and_schema():
    assert parse_call('{"name": "get_weather", "arguments": {"city": "Paris"}}', [WEATHER]).arguments == {"city": "Paris"}
    assert parse_call('{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}', [WEATHER]).arguments == {
        "city": "Rome"}
    for body, problem in [('{"name": "get_weather", "arguments": {"city": 3}}', "expected string"),
                          ('{"name": "get_weather", "arguments": {}}', "missing required"),
                          ('{"name": "get_weather", "arguments": {"city": "x", "days": 0}}', "minimum"),
                          ('{"name": "launch", "arguments": {}}', "not an offered tool"),
                          ('{"name": "get_weather", "arguments": {"city": "Par', "not JSON"),
                          ('["get_weather"]', "not {")]:
        result = parse_call(body, [WEATHER])
        assert isinstance(result, str) and problem in result, (body, result)


def test_the_filter_takes_calls_out_of_text_streamed_in_any_pieces():
    reply = "Let me check.\n" + CALL + "\n" + call_block("get_weather", {"city": "Oslo", "days": 2}) + "\n"
    for size in (1, 2, 3, 7, len(reply)):
        f = ToolCallFilter([WEATHER])
        text = "".join(f.feed(reply[i:i + size]) for i in range(0, len(reply), size)) + f.flush()
        assert text == "Let me check."  # the whitespace before a call goes with it
        assert [c.arguments for c in f.calls] == [{"city": "Paris"}, {"city": "Oslo", "days": 2}]
    # a text reply passes through whole, its trailing whitespace too; "<" that starts no call is text
    assert parse_reply("a < b <tool and\n", [WEATHER]) == ("a < b <tool and\n", [], [])


def test_a_block_that_does_not_parse_stays_in_the_text_and_repeats_are_dropped():
    bad = OPEN + '\n{"name": "get_weather", "arguments": {"town": "Paris"}}\n' + CLOSE
    text, calls, errors = parse_reply(bad, [WEATHER])
    assert text == bad and calls == [] and "missing required" in errors[0]
    text, calls, _ = parse_reply(OPEN + '\n{"name": "get_weather", "arguments": {"city": "Paris"}}', [WEATHER])
    assert text == "" and calls[0].arguments == {"city": "Paris"}  # unclosed at the end but complete
    f = ToolCallFilter([WEATHER])
    f.feed(CALL + "\n" + CALL)
    assert len(f.calls) == 1 and f.repeated
    # a broken block ends at its first closing tag; a call after it is still read
    broken = OPEN + '\n{"name": "get_weather", "arguments": {"city": \n' + CLOSE
    text, calls, errors = parse_reply(broken + " then " + CALL, [WEATHER])
    assert text == broken + " then" and [c.arguments for c in calls] == [{"city": "Paris"}] and len(errors) == 1


def test_a_string_value_may_hold_the_closing_tag():
    block = call_block("get_weather", {"city": "a}}</tool_call> b"})
    for size in (1, 5, len(block)):
        f = ToolCallFilter([WEATHER])
        text = "".join(f.feed(block[i:i + size]) for i in range(0, len(block), size)) + f.flush()
        assert text == "" and [c.arguments for c in f.calls] == [{"city": "a}}</tool_call> b"}]


class _CharTokenizer:
    """Token ids are character codes."""

    def decode(self, ids, skip_special_tokens=True, clean_up_tokenization_spaces=False):
        return "".join(map(chr, ids))


def test_stream_with_tools_reports_calls_and_finish_reason():
    out = TextStream()
    ids = [ord(c) for c in "ok " + CALL + "\n" + CALL + "\nmore text that never comes"]
    out.attach(stream_with_tools(iter(ids), _CharTokenizer(), (), [WEATHER], weakref.ref(out)))
    assert out.text() == "ok"
    assert [c.name for c in out.tool_calls] == ["get_weather"] and out.finish_reason == "tool_calls"
    # stop strings apply to the text, never inside a call
    out = TextStream()
    ids = [ord(c) for c in call_block("get_weather", {"city": "STOP"}) + " after STOP gone"]
    out.attach(stream_with_tools(iter(ids), _CharTokenizer(), ("STOP",), [WEATHER], weakref.ref(out)))
    assert out.text() == " after " and out.tool_calls[0].arguments == {"city": "STOP"}


def test_schema_check_subset():
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "exclusiveMaximum": 5}, "tags": {"type": "array", "items": {"type": "string"},
                                                                  "maxItems": 2},
        "mode": {"enum": ["a", "b"]}, "x": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "ref": {"$ref": "#/$defs/pos"}},
        "additionalProperties": False, "$defs": {"pos": {"type": "number", "minimum": 0}}}
    assert schema_errors({"n": 4, "tags": ["a"], "mode": "b", "x": None, "ref": 1.5}, schema) == []
    assert schema_errors({"n": 4.0}, schema) == []  # 4.0 is an integer in JSON
    for bad in ({"n": 5}, {"n": True}, {"tags": ["a", 1]}, {"tags": ["a", "b", "c"]}, {"mode": "c"}, {"x": 3},
                {"ref": -1}, {"other": 1}):
        assert schema_errors(bad, schema), bad
    assert json.dumps(schema_errors("x", {"type": "integer"})) == '["$: expected integer, got string"]'
