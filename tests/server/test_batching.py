"""The batching backend: batched output equals single-stream output, sequences join and
leave between steps, each keeps its own options, stop strings and cancellation free the
row, and models that cannot batch fall back to one generation at a time."""

from __future__ import annotations

import threading
import time

import pytest

from agent.backends.batching import BatchingBackend
from agent.backends.fastbatching import batching_backend
from agent.backends.local import TransformersBackend
from agent.models.loader import load_model
from agent.options import GenerationOptions
from tests.helpers.batching import chat, one_torch_thread, run_concurrently  # noqa: F401 (the fixture)

GREEDY = GenerationOptions(temperature=0.0, max_new_tokens=24, repetition_penalty=1.1)
PROMPTS = ["Hello", "The capital of France is Paris. Once upon a time", "how are you today?",
           "Once upon a time there was a tiny model. The capital of France", "Paris"]





@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    models = {}

    def get(family: str):
        if family not in models:
            models[family] = load_model(str(tiny_model_dir(family)), fast=False)
        return models[family]

    return get


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_batched_greedy_output_equals_single_stream(tiny, family):
    model = tiny(family)
    serial = [model.stream(chat(p), GREEDY).text() for p in PROMPTS]
    backend = BatchingBackend(model, window_ms=20)
    try:
        # Two start together, the others join while those are decoding (different lengths,
        # so the batch holds left padding).
        texts, streams = run_concurrently(backend, [(0.0, chat(p), GREEDY) if i < 2 else (0.05 * i, chat(p), GREEDY)
                                                     for i, p in enumerate(PROMPTS)])
        assert texts == serial
        assert backend.mean_batch_size > 1.0  # the first two started together
        assert all(s.finish_reason in ("stop", "length") for s in streams)
        assert [s.prompt_tokens for s in streams] == [len(model.encode_prompt(model.format_chat(chat(p))))
                                                     for p in PROMPTS]
    finally:
        backend.close()


def test_prompts_arriving_together_are_prefilled_in_one_padded_pass(tiny):
    model = tiny("llama")
    prompts = ["Hello there", "Hello there, how are you", "Hello there, how are you today?", "Hi there, friend"]
    serial = [model.stream(chat(p), GREEDY).text() for p in prompts]
    backend = BatchingBackend(model, window_ms=200)
    try:
        texts, _ = run_concurrently(backend, [(0.0, chat(p), GREEDY) for p in prompts])
        assert backend._scheduler.prefill_passes == 1
    finally:
        backend.close()
    assert texts == serial


@pytest.mark.parametrize("engine", ["transformers", "fast"])
def test_each_sequence_keeps_its_own_options(tiny, tiny_model_dir, engine):
    """On both engines (transformers' forward, the fast decoder's kernels)."""
    model = tiny("llama") if engine == "transformers" else load_model(str(tiny_model_dir("llama")))
    sampled = GenerationOptions(temperature=1.0, top_p=0.9, top_k=20, max_new_tokens=16, seed=123)
    short = GenerationOptions(temperature=0.0, max_new_tokens=3)
    backend = batching_backend(model, engine=engine, window_ms=30)
    try:
        jobs = [(0.0, chat("Hello"), sampled), (0.0, chat("Hello"), sampled), (0.0, chat("Hello"), GREEDY),
                (0.0, chat("Paris"), short)]
        texts, streams = run_concurrently(backend, jobs)
        again, _ = run_concurrently(backend, jobs[:1])
    finally:
        backend.close()
    assert texts[0] == texts[1] == again[0]  # same seed, same sample, batched or alone
    assert texts[2] == model.stream(chat("Hello"), GREEDY).text()
    assert streams[3].completion_tokens == 3 and streams[3].finish_reason == "length"


def test_stop_strings_and_cancellation_free_the_row(tiny):
    model = tiny("llama")
    backend = BatchingBackend(model, window_ms=0)
    try:
        full = backend.stream(chat("Hello"), GREEDY).text()
        stop = full[len(full) // 2:][:3]
        cut = backend.stream(chat("Hello"), GREEDY.model_copy(update={"stop": (stop,)})).text()
        assert cut == full[:full.index(stop)]

        long = GREEDY.model_copy(update={"max_new_tokens": 200})
        stream = backend.stream(chat("Hello"), long)
        next(stream)
        stream.cancel()
        rest = list(stream)
        assert stream.finish_reason == "cancelled" and len(rest) < 50
        deadline = time.monotonic() + 5
        while backend._scheduler.batch.rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend._scheduler.batch.rows == []
    finally:
        backend.close()


def test_models_that_cannot_batch_fall_back(tiny_model_dir):
    t5 = load_model(str(tiny_model_dir("t5")), fast=False)
    assert not BatchingBackend.supports(t5)
    assert isinstance(batching_backend(t5), TransformersBackend)


def test_the_server_batches_concurrent_clients(tiny, fake_config, serve, tmp_path):
    import openai

    from agent import Agent
    from agent.server import create_app

    persona = tmp_path / "short.j2"
    persona.write_text("You are {{ agent_name }}.")  # the tiny model reads 256 tokens at most
    backend = BatchingBackend(tiny("llama"), window_ms=50)
    agent = Agent(fake_config(persona=str(persona), generation={"max_new_tokens": 16}), backend=backend)
    try:
        with serve(create_app(agent)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            texts = [None] * 4

            def ask(i: int) -> None:
                stream = client.chat.completions.create(model="llmos", stream=True, user=f"u{i}", temperature=0,
                                                        max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
                texts[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
    finally:
        agent.close()
    assert len(set(texts)) == 1 and texts[0]  # same prompt, same greedy reply for every user
    assert backend.mean_batch_size > 1.0


@pytest.mark.real
def test_real_default_model_batched_equals_single_stream():
    model = load_model("smollm2-135m", fast=False)
    options = GenerationOptions(temperature=0.0, max_new_tokens=10, repetition_penalty=1.1)
    prompts = [chat("Tell me about Paris."), chat("Write a haiku about the sea.")]
    serial = [model.stream(p, options).text() for p in prompts]
    backend = BatchingBackend(model, window_ms=50)
    try:
        texts, _ = run_concurrently(backend, [(0.0, p, options) for p in prompts])
    finally:
        backend.close()
    assert texts == serial


def test_a_looping_reply_ends_as_a_lone_stream_ends_it():
    """The scheduler ends a reply that repeats a block (LanguageModel.stream's RepetitionGuard);
    inside an unfinished constrained call it asks the grammar to wrap up instead."""
    from types import SimpleNamespace

    from agent.backends.batching import _Request, _Scheduler
    from agent.models.textstream import TextStream

    scheduler = object.__new__(_Scheduler)
    scheduler.lm = SimpleNamespace(eos_token_ids={0})
    loop = [5, 6, 7, 8] * 12

    req = _Request([1, 2], GREEDY, 100, TextStream(prompt_tokens=2))
    sent = 0
    while scheduler._emit(req, loop[sent]):
        sent += 1
    assert 8 <= sent < len(loop) - 1 and req.generated == sent + 1

    req = _Request([1, 2], GREEDY, 100, TextStream(prompt_tokens=2))
    req.constraint = SimpleNamespace(accepting=False, wrap_up=False)
    assert all(scheduler._emit(req, token) for token in loop)
    assert req.constraint.wrap_up is True
