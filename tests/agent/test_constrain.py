"""Constrained decoding: whatever the model, a constrained reply parses and satisfies its
schema. Tiny random models (the fast decoder and transformers' generate) show it holds by
construction; the real 135M shows it on real text (`real`)."""

import json

import pytest

from agent.errors import InputError
from agent.models.constrain import Constraint, call_schema, reply_grammar, strict_schema
from agent.models.loader import load_model
from agent.models.schemacheck import schema_errors
from agent.models.toolformat import OPEN
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolCall, ToolSpec

WEATHER = ToolSpec(name="get_weather", description="Get the current weather for a city.",
                   parameters={"type": "object", "properties": {
                       "city": {"type": "string", "maxLength": 20},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]})
CONVERT = ToolSpec(name="convert", description="Convert an amount between currencies.",
                   parameters={"type": "object", "properties": {
                       "amount": {"type": "number"}, "to": {"type": "string", "enum": ["EUR", "USD"]},
                       "round": {"type": "boolean"}}, "required": ["amount", "to"]})
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer"}}, "required": ["name", "age"]}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
SHORT = "Hello"  # the tiny models read 256 tokens: a bare prompt, the tools undescribed


def test_grammars():
    assert reply_grammar() is None and reply_grammar([WEATHER], "none") is None
    assert reply_grammar(response_format=ResponseFormat(type="text")) is None
    auto = reply_grammar([WEATHER, CONVERT], "auto")
    assert "pre[lazy]" in auto and '"get_weather"' in auto and '"convert"' in auto
    named = reply_grammar([WEATHER, CONVERT], "convert")
    assert '"convert"' in named and '"get_weather"' not in named
    assert "open body)*" in reply_grammar([WEATHER], "required") and "open body)*" not in reply_grammar(
        [WEATHER], "required", parallel=False)
    # a tag that is one special token (Qwen2.5) is taken as the token or as text
    special = reply_grammar([WEATHER], "auto", tag_ids={"<tool_call>": 7, "</tool_call>": 8})
    assert "TEXT <[7]> body" in special and 'close: "</tool_call>" | <[8]>' in special
    with pytest.raises(InputError):
        reply_grammar([WEATHER], "launch")
    schema = call_schema(WEATHER)
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"]["additionalProperties"] is False
    assert strict_schema({"type": "object", "additionalProperties": True, "properties": {}}
                         )["additionalProperties"] is True


def _check(stream, tools, *, must_call):
    text = stream.text()
    assert OPEN not in text, text  # every block the model opened became a call
    if must_call:
        assert stream.tool_calls and stream.finish_reason == "tool_calls" and text == ""
    for call in stream.tool_calls:
        assert isinstance(call, ToolCall)
        tool = next(t for t in tools if t.name == call.name)
        assert schema_errors(call.arguments, tool.parameters) == []
    return text


@pytest.fixture(scope="module", params=["fast", "transformers"])
def tiny(request, tiny_model_dir):
    """A tiny random model: it writes noise, so anything valid in its replies is the grammar's doing."""
    model = load_model(str(tiny_model_dir("llama")), device="cpu", fast=request.param == "fast")
    assert (model.fast is not None) == (request.param == "fast")
    return model


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_models_replies_are_valid_calls(tiny, seed):
    options = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, seed=seed, max_new_tokens=150)
    for choice in ("required", "convert"):
        stream = tiny.stream(SHORT, options, tools=[WEATHER, CONVERT], tool_choice=choice)
        _check(stream, [WEATHER, CONVERT], must_call=True)
        if choice == "convert":
            assert {c.name for c in stream.tool_calls} == {"convert"}
    stream = tiny.stream(SHORT, options, tools=[WEATHER, CONVERT], tool_choice="auto")
    _check(stream, [WEATHER, CONVERT], must_call=False)


def test_a_short_budget_still_ends_in_a_whole_call(tiny):
    """The last tokens wrap the call up: strings and objects close, the reply ends valid."""
    for budget in (90, 110):  # the tiny tokenizer needs ~70 tokens for the shortest call
        options = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, seed=7, max_new_tokens=budget)
        stream = tiny.stream(SHORT, options, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
        _check(stream, [WEATHER], must_call=True)
        assert stream.completion_tokens <= budget and len(stream.tool_calls) == 1


def test_json_replies_follow_the_schema(tiny):
    options = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, seed=5, max_new_tokens=120)
    text = tiny.stream(SHORT, options, response_format=ResponseFormat(type="json_schema", schema=PERSON)).text()
    assert schema_errors(json.loads(text), PERSON) == []
    text = tiny.stream(SHORT, options, response_format=ResponseFormat(type="json_object")).text()
    assert isinstance(json.loads(text), dict)


def test_unconstrained_is_only_told(tiny):
    options = GenerationOptions(temperature=0, max_new_tokens=8)
    stream = tiny.stream(SHORT, options, tools=[WEATHER], tool_choice="required", constrained=False)
    stream.text()
    assert stream.finish_reason in ("stop", "length")  # noise: no call, and nothing enforced it


def test_the_mask_matches_the_matcher(tiny):
    import torch

    c = tiny.constraint([WEATHER], "required")
    allowed = c.allowed()
    ids = torch.nonzero(allowed).view(-1).tolist()
    assert ids and all(c.allows(i) for i in ids[:50])
    logits = torch.zeros(allowed.shape[0] + 3)
    masked = c.mask(logits)
    assert torch.isinf(masked[~torch.cat([allowed, torch.zeros(3, dtype=torch.bool)])]).all()
    assert masked[3 + allowed.shape[0] - 1] == float("-inf")  # logits wider than the tokenizer: off
    assert isinstance(c, Constraint)


def test_tool_choice_is_checked(tiny):
    with pytest.raises(InputError):
        tiny.stream(SHORT, GenerationOptions(max_new_tokens=4), tools=[WEATHER], tool_choice="launch")
    with pytest.raises(InputError):
        tiny.stream(SHORT, GenerationOptions(max_new_tokens=4), tool_choice="required")


# -- the real 135M ---------------------------------------------------------------------------
GREEDY = GenerationOptions(temperature=0, repetition_penalty=1.0, max_new_tokens=80)


@pytest.mark.real
def test_real_model_required_and_named_calls_parse(real_model):
    for choice in ("required", "get_weather"):
        stream = real_model.stream(ASK, GREEDY, tools=[WEATHER, CONVERT], tool_choice=choice)
        _check(stream, [WEATHER, CONVERT], must_call=True)
        assert stream.tool_calls[0].name == "get_weather"
        assert stream.tool_calls[0].arguments["city"] == "Paris"
    ask = [{"role": "user", "content": "Convert 20 dollars to euros."}]
    stream = real_model.stream(ask, GREEDY, tools=[WEATHER, CONVERT], tool_choice="convert")
    _check(stream, [CONVERT], must_call=True)
    assert stream.tool_calls[0].arguments["to"] in ("EUR", "USD")


@pytest.mark.real
def test_real_model_auto_answers_in_text_or_calls(real_model):
    stream = real_model.stream([{"role": "user", "content": "Hi! Who are you?"}], GREEDY, tools=[WEATHER, CONVERT])
    text = _check(stream, [WEATHER, CONVERT], must_call=False)
    assert text.strip() and stream.tool_calls == [] and stream.finish_reason in ("stop", "length")
    stream = real_model.stream([{"role": "user", "content": "Convert 20 dollars to euros."}], GREEDY,
                               tools=[WEATHER, CONVERT])
    _check(stream, [WEATHER, CONVERT], must_call=True)
    assert [(c.name, c.arguments["amount"]) for c in stream.tool_calls] == [("convert", 20)]


@pytest.mark.real
def test_real_model_parallel_calls(real_model, monkeypatch):
    ask = [{"role": "user", "content": "What's the weather in Paris and in Tokyo?"}]
    # the 135M's calibration ends a reply after its first call (it has no sense of when to go
    # on); without it the model writes several calls
    monkeypatch.setattr(real_model, "tool_bias", {})
    stream = real_model.stream(ask, GREEDY, tools=[WEATHER], tool_choice="required")
    _check(stream, [WEATHER], must_call=True)
    cities = [c.arguments["city"] for c in stream.tool_calls]
    assert len(cities) >= 2 and cities[0] == "Paris"
    assert len(cities) == len(set(cities))  # a repeated call ends the reply instead of looping
    one = real_model.stream(ask, GREEDY, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    _check(one, [WEATHER], must_call=True)
    assert len(one.tool_calls) == 1


@pytest.mark.real
def test_real_model_renders_tool_results_and_answers_after_them(real_model):
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [call.openai()]},
               {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 degrees."}]
    prompt = real_model.format_chat(history, tools=[WEATHER])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in prompt
    assert "<tool_response>\nSunny, 24 degrees.\n</tool_response>" in prompt
    stream = real_model.stream(history, GREEDY, tools=[WEATHER], tool_choice="none")
    assert stream.text().strip() and stream.tool_calls == []


@pytest.mark.real
def test_real_model_json_reply(real_model):
    ask = [{"role": "user", "content": "Make up a person. Reply in JSON with name and age."}]
    text = real_model.stream(ask, GREEDY, response_format=ResponseFormat(type="json_schema", schema=PERSON)).text()
    assert schema_errors(json.loads(text), PERSON) == []


def test_batched_rows_each_follow_their_own_grammar(tiny_model_dir, monkeypatch):
    """The batching backend masks each row with its own constraint; a plain row is untouched."""
    import threading

    from agent.backends.batching import BatchingBackend
    from agent.models import toolformat

    model = load_model(str(tiny_model_dir("llama")), device="cpu", fast=False)
    monkeypatch.setitem(toolformat.TOOL_STYLES, "tiny", lambda tools: "tools")  # the tiny context is 256
    model.tool_style = "tiny"
    options = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, seed=3, max_new_tokens=120)
    plain = model.stream([{"role": "user", "content": "Hi"}], options.model_copy(update={"temperature": 0})).text()
    requests = [dict(tools=[WEATHER, CONVERT], tool_choice="required"), dict(tools=[WEATHER, CONVERT], tool_choice="convert"),
                dict(response_format=ResponseFormat(type="json_schema", schema=PERSON)), {}]
    backend = BatchingBackend(model, window_ms=100)
    results: dict[int, object] = {}

    def run(i, kwargs):
        opts = options if kwargs else options.model_copy(update={"temperature": 0})
        stream = backend.stream([{"role": "user", "content": "Hi"}], opts, **kwargs)
        results[i] = (stream.text(), stream)

    try:
        threads = [threading.Thread(target=run, args=(i, kw)) for i, kw in enumerate(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        backend.close()
    for i in (0, 1):
        text, stream = results[i]
        assert OPEN not in text and stream.tool_calls and stream.finish_reason == "tool_calls"
        for call in stream.tool_calls:
            spec = WEATHER if call.name == "get_weather" else CONVERT
            assert schema_errors(call.arguments, spec.parameters) == []
    assert {c.name for c in results[1][1].tool_calls} == {"convert"}
    assert schema_errors(json.loads(results[2][0]), PERSON) == []
    assert results[3][0] == plain and backend.mean_batch_size > 1.0
