"""Continuous batching on the fast decoder (agent.models.fastbatch, agent.backends.fastbatching):
batched output equals the single-stream fast decoder's, streams join (prefilled in chunks) and
leave between steps, prompts reuse cached prefixes, the memory cap makes newcomers wait, and
the server picks the engine from its config."""

from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch")

from agent.backends.batching import BatchingBackend  # noqa: E402
from agent.backends.fastbatching import FastBatchingBackend, batching_backend  # noqa: E402
from agent.errors import BackendError  # noqa: E402
from agent.models.fastbatch import SlotDecoder  # noqa: E402
from agent.models.loader import load_model  # noqa: E402
from agent.options import GenerationOptions  # noqa: E402
from tests.helpers.batching import chat, one_torch_thread, run_concurrently  # noqa: E402, F401 (the fixture)

GREEDY = GenerationOptions(temperature=0.0, max_new_tokens=24, repetition_penalty=1.1)
PROMPTS = ["Hello", "The capital of France is Paris. Once upon a time", "how are you today?",
           "Once upon a time there was a tiny model. The capital of France", "Paris"]





@pytest.fixture(scope="module")
def fast_model(tiny_model_dir):
    model = load_model(str(tiny_model_dir("llama")))
    assert model.fast is not None, "the tiny llama should run on the fast decoder"
    return model


def test_batched_greedy_output_equals_the_fast_single_stream(fast_model):
    serial = [fast_model.stream(chat(p), GREEDY).text() for p in PROMPTS]
    backend = FastBatchingBackend(fast_model, window_ms=20)
    try:  # two start together, the others join while those decode; they end at different steps
        jobs = [(0.0 if i < 2 else 0.05 * i, chat(p), GREEDY) for i, p in enumerate(PROMPTS)]
        texts, streams = run_concurrently(backend, jobs)
        assert backend.mean_batch_size > 1.0
    finally:
        backend.close()
    assert texts == serial
    assert all(s.finish_reason in ("stop", "length") for s in streams)


def test_rows_stay_exact_when_others_leave_and_join(fast_model):
    """Short and long requests: each that ends hands its row to the last one (a copy of
    that stream's keys/values), and the moved streams go on exactly."""
    lengths = [3, 30, 7, 30, 12, 30]
    jobs = [(0.0 if i < 3 else 0.02 * i, chat(PROMPTS[i % len(PROMPTS)]),
             GREEDY.model_copy(update={"max_new_tokens": n})) for i, n in enumerate(lengths)]
    serial = [fast_model.stream(m, o).text() for _, m, o in jobs]
    backend = FastBatchingBackend(fast_model, window_ms=30)
    try:
        texts, _ = run_concurrently(backend, jobs)
    finally:
        backend.close()
    assert texts == serial


def test_a_long_prompt_is_prefilled_in_chunks_between_the_decode_steps_of_others(fast_model):
    fast = fast_model.fast
    plain = GenerationOptions(temperature=0.0, max_new_tokens=40, repetition_penalty=1.0)
    short, long = list(range(10, 20)), [(7 * i) % 200 + 10 for i in range(150)]
    expected = [list(fast.generate(ids, plain, eos_token_ids=())) for ids in (short, long)]
    engine = SlotDecoder(fast)
    got: list[list[int]] = [[], []]
    first = engine.start(short)
    got[0].append(int(engine.prefill(first, 1000).argmax()))
    engine.join(first, 40)
    second, logits, chunks = engine.start(long), None, 0
    while logits is None:  # 16 prompt tokens, then one step of the running stream, ...
        logits = engine.prefill(second, 16)
        chunks += 1
        got[0].append(int(engine.step([got[0][-1]])[0].argmax()))
    got[1].append(int(logits.argmax()))
    engine.join(second, 40)
    while len(got[1]) < 40:
        rows = engine.step([got[0][-1], got[1][-1]])
        for out, row in zip(got, rows, strict=True):
            out.append(int(row.argmax()))
    assert chunks == -(-len(long) // 16)
    assert got[0][:40] == expected[0] and got[1] == expected[1]
    engine.finish(engine.running[0])  # the other stream takes row 0 and goes on exactly
    more = engine.step([got[1][-1]])
    again = list(fast.generate(long, plain.model_copy(update={"max_new_tokens": 41}), eos_token_ids=()))
    assert int(more[0].argmax()) == again[-1]


def test_the_next_turn_reuses_the_conversation_prefix(fast_model):
    backend = FastBatchingBackend(fast_model, window_ms=0)
    try:
        first = backend.stream(chat("Once upon a time there was a tiny model."), GREEDY).text()
        history = [*chat("Once upon a time there was a tiny model."), {"role": "assistant", "content": first},
                   *chat("And then?")]
        before = backend.reused_tokens
        again = backend.stream(history, GREEDY)
        text = again.text()
        reused = backend.reused_tokens - before
    finally:
        backend.close()
    assert text == fast_model.stream(history, GREEDY).text()
    # everything up to the new user message came from the cache
    first_prompt = len(fast_model.encode_prompt(fast_model.format_chat(chat("Once upon a time there was a tiny model."))))
    assert reused >= first_prompt


def test_the_memory_cap_makes_newcomers_wait(fast_model):
    serial = [fast_model.stream(chat(p), GREEDY).text() for p in PROMPTS[:3]]
    backend = FastBatchingBackend(fast_model, window_ms=30, kv_limit_mb=0.001)  # room for one stream
    try:
        texts, _ = run_concurrently(backend, [(0.0, chat(p), GREEDY) for p in PROMPTS[:3]])
        assert backend.mean_batch_size == 1.0
    finally:
        backend.close()
    assert texts == serial


def test_stop_strings_and_cancellation_free_the_row(fast_model):
    backend = FastBatchingBackend(fast_model, window_ms=0)
    try:
        full = backend.stream(chat("Hello"), GREEDY).text()
        stop = full[len(full) // 2:][:3]
        cut = backend.stream(chat("Hello"), GREEDY.model_copy(update={"stop": (stop,)})).text()
        assert cut == full[:full.index(stop)]

        stream = backend.stream(chat("Hello"), GREEDY.model_copy(update={"max_new_tokens": 200}))
        next(stream)
        stream.cancel()
        rest = list(stream)
        assert stream.finish_reason == "cancelled" and len(rest) < 50
        deadline = time.monotonic() + 5
        while backend._fast.rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend._fast.rows == [] and backend._fast.engine.running == []
    finally:
        backend.close()


def test_the_engine_is_chosen_by_config(fast_model, tiny_model_dir):
    backend = batching_backend(fast_model)
    try:
        assert isinstance(backend, FastBatchingBackend)
    finally:
        backend.close()
    plain = load_model(str(tiny_model_dir("llama")), fast=False)
    backend = batching_backend(plain)
    try:
        assert type(backend) is BatchingBackend
    finally:
        backend.close()
    with pytest.raises(BackendError, match="engine: auto or transformers"):
        batching_backend(plain, engine="fast")
    with pytest.raises(BackendError, match="use auto, fast or transformers"):
        batching_backend(plain, engine="turbo")


def test_slot_decoder_checks_its_input(fast_model):
    engine = SlotDecoder(fast_model.fast)
    with pytest.raises(Exception, match="input_ids is empty"):
        engine.start([])
    with pytest.raises(Exception, match="holds at most"):
        engine.start([5] * (fast_model.fast.max_seq_len + 1))
    pending = engine.start([5, 6, 7])
    with pytest.raises(Exception, match="prefilled sequence"):
        engine.join(pending, 4)
    with pytest.raises(Exception, match="one token per running sequence"):
        engine.step([1])


@pytest.mark.real
def test_real_default_model_fast_batched_equals_single_stream():
    model = load_model("smollm2-135m")
    options = GenerationOptions(temperature=0.0, max_new_tokens=16, repetition_penalty=1.1)
    prompts = [chat("Tell me about Paris."), chat("Write a haiku about the sea."), chat("What is 2+2?")]
    serial = []
    for p in prompts:  # each prefilled whole: prefix reuse changes the prefill's rounding
        model.fast.reset()
        serial.append(model.stream(p, options).text())
    backend = FastBatchingBackend(model, window_ms=50, prefix_cache_mb=0)
    try:
        texts, _ = run_concurrently(backend, [(0.0, p, options) for p in prompts])
        assert backend.mean_batch_size > 1.0 and backend.reused_tokens == 0
    finally:
        backend.close()
    assert texts == serial


def test_the_server_serves_twenty_clients_on_the_fast_engine_without_cross_talk(fake_config, serve, tiny_model_dir,
                                                                                 tmp_path):
    """`llmos serve`'s agent on a fast-decoder model batches on the fast engine; 20 clients at
    once each get exactly the reply they get alone, and a client that hangs up mid-stream
    frees its row while the others go on."""
    import httpx
    import openai

    from agent.server import create_app
    from agent.server.app import build_served_agent

    persona = tmp_path / "short.j2"
    persona.write_text("You are {{ agent_name }}.")  # the tiny model reads 256 tokens at most
    # fp32 weights: a batch's attention shapes differ from a lone stream's, and with bf16
    # activations a last-bit difference can flip a near-tie of this random model's logits;
    # in fp32 the replies must match exactly, so any mixing of rows shows
    config = fake_config(model={"backend": "transformers", "name": str(tiny_model_dir("llama")), "dtype": "float32"},
                         persona=str(persona), generation={"max_new_tokens": 12},
                         server={"batching": {"window_ms": 50, "prefix_cache_mb": 0}})
    agent = build_served_agent(config)
    backend = agent.backend
    assert isinstance(backend, FastBatchingBackend) and backend.model.fast.weights == "fp32"
    words = ["apple", "river", "stone", "cloud", "tiger", "maple", "ocean", "piano", "lemon", "comet",
             "amber", "delta", "flute", "grape", "haven", "ivory", "jelly", "koala", "lilac", "mango"]

    def ask(client, word: str) -> str:
        stream = client.chat.completions.create(model="llmos", stream=True, user=f"user-{word}", temperature=0,
                                                max_tokens=12, messages=[{"role": "user", "content": f"Say {word}"}])
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    try:
        with serve(create_app(agent)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            alone = {w: ask(client, w) for w in words}
            together: dict[str, str] = {}
            threads = [threading.Thread(target=lambda w=w: together.__setitem__(w, ask(client, w))) for w in words]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert backend.mean_batch_size > 1.0
            # a client that reads one chunk of a long reply and hangs up
            body = {"model": "llmos", "stream": True, "max_tokens": 200, "temperature": 0,
                    "messages": [{"role": "user", "content": "Tell a long story"}]}
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
                next(response.iter_lines())
            deadline = time.monotonic() + 10
            while (backend._fast.rows or backend._fast.prefilling) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert backend._fast.rows == [] and backend._fast.engine.running == []
    finally:
        agent.close()
    assert together == alone and len(set(alone.values())) > 1


def test_batch_steps_choose_their_threads_and_keep_their_tokens(fast_model):
    """With threads="auto" and two intra-op threads the batch steps time one thread against
    two (StepThreads, as the decoder's own steps do); the tokens are the same either way."""
    fast = fast_model.fast
    plain = GenerationOptions(temperature=0.0, max_new_tokens=30, repetition_penalty=1.0)
    prompts = [list(range(10, 20)), list(range(30, 52))]
    expected = [list(fast.generate(ids, plain, eos_token_ids=())) for ids in prompts]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        engine = SlotDecoder(fast)
        got = []
        for ids in prompts:
            pending = engine.start(ids)
            got.append([int(engine.prefill(pending, 1000).argmax())])
            engine.join(pending, 40)
        while len(got[0]) < 30:
            for out, row in zip(got, engine.step([g[-1] for g in got]), strict=True):
                out.append(int(row.argmax()))
        assert engine._chooser is not None and engine._chooser.choice in (1, 2)
    finally:
        torch.set_num_threads(before)
    assert got == expected


@pytest.mark.real
def test_real_model_batch_products_stay_close_to_a_lone_stream(monkeypatch):
    """Big batches multiply q/k/v, o and gate/up in W8A8 (the int8 prefill's layers), down and
    the head in bf16 (thresholds forced to 2 rows here): each row's logits stay close to
    the lone stream's and its greedy tokens start the same."""
    import agent.models.fastpath as fastpath

    model = load_model("smollm2-135m")
    fast = model.fast
    assert fast._batch_int8() is not None, "the default model should have its int8 prefill layers"
    prompts = [model.encode_prompt(model.format_chat(chat(t))) for t in
               ("Tell me about Paris.", "Write a haiku about the sea.", "What is 2+2?")]
    plain = GenerationOptions(temperature=0.0, max_new_tokens=6, repetition_penalty=1.0)
    alone = []
    for ids in prompts:
        fast.reset()
        alone.append(list(fast.generate(ids, plain, eos_token_ids=())))
    monkeypatch.setattr(fastpath, "_INT8_BATCH_ROWS", 2)
    monkeypatch.setattr(fastpath, "_DENSE_HEAD_ROWS", 2)
    engine = SlotDecoder(fast, prefix_cache_mb=0)
    got = []
    for ids in prompts:
        pending = engine.start(ids)
        got.append([int(engine.prefill(pending, 10_000).argmax())])
        engine.join(pending, 16)
    rows = engine.step([g[-1] for g in got])
    assert rows.shape == (3, fast.vocab_size) and bool(torch.isfinite(rows).all())
    for g, row in zip(got, rows, strict=True):
        g.append(int(row.argmax()))
    assert [g[:2] for g in got] == [a[:2] for a in alone]
