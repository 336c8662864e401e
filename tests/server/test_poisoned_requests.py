"""One bad request never hurts another: a poisoned request among good ones, through every
entry point (the server, the Agent, the batching backend, the fast decoder), ends with its
own clear error while the good ones finish as they would alone, and nothing half-written
is left behind."""

from __future__ import annotations

import threading

import pytest

from agent.backends.batching import BatchingBackend
from agent.errors import BackendError, InputError
from agent.models.loader import load_model
from agent.models.sampling import choose_tokens
from agent.options import GenerationOptions
from tests.helpers.batching import chat, one_torch_thread  # noqa: F401 (the fixture)

SAMPLED = GenerationOptions(temperature=0.7, max_new_tokens=8, seed=5)
GREEDY = GenerationOptions(temperature=0.0, max_new_tokens=8)
HUGE_SEED = 1208925819614629174706176  # 2**80: torch.Generator.manual_seed overflows


def _poisoned(**fields):
    """Options that skipped validation (as a caller building them by hand could): what the
    kernels must survive without taking the neighbours down."""
    return GenerationOptions.model_construct(**{**SAMPLED.model_dump(), **fields})




@pytest.fixture(scope="module")
def llama(tiny_model_dir):
    return load_model(str(tiny_model_dir("llama")), fast=False)


def _together(fns):
    """Run the callables at once; returns each one's result or exception."""
    out: list = [None] * len(fns)

    def run(i, fn):
        try:
            out[i] = fn()
        except Exception as exc:  # the poisoned one's error is the point
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


# ---- validation at the edge ----------------------------------------------------------------
def test_seeds_outside_int64_and_subnormal_temperatures_are_refused_or_safe():
    with pytest.raises(ValueError, match="seed"):
        GenerationOptions(seed=HUGE_SEED)
    with pytest.raises(ValueError, match="seed"):
        GenerationOptions(seed=-(2**63) - 1)
    assert GenerationOptions(seed=2**63 - 1).seed == 2**63 - 1
    assert GenerationOptions(temperature=1e-40).greedy  # would divide the logits to inf


# ---- the batching backend ------------------------------------------------------------------
def test_a_poisoned_sequence_fails_alone_in_the_batch(llama):
    alone = {p: llama.stream(chat(p), GREEDY).text() for p in ("Hello", "Paris", "how are you today?")}
    backend = BatchingBackend(llama, window_ms=100)
    try:
        streams = [backend.stream(chat(p), GREEDY) for p in alone]
        bad_seed = backend.stream(chat("Hello"), _poisoned(seed=HUGE_SEED))
        bad_temp = backend.stream(chat("Paris"), _poisoned(temperature=float("nan")))
        results = _together([s.text for s in [*streams, bad_seed, bad_temp]])
        assert results[:3] == list(alone.values())  # every neighbour finished, as it would alone
        assert all(isinstance(r, BackendError) for r in results[3:]), results[3:]
        assert "seed" in str(results[3])
        assert backend.stream(chat("Hello"), GREEDY).text() == alone["Hello"]  # still serving
    finally:
        backend.close()


def test_a_sequence_whose_prefill_fails_fails_alone(llama):
    from agent.backends.batching import _Request
    from agent.models.textstream import TextStream

    backend = BatchingBackend(llama, window_ms=100)
    try:
        good = [backend.stream(chat(p), GREEDY) for p in ("Hello", "Paris")]
        vocab = int(llama.model.get_output_embeddings().weight.shape[0])
        ids = llama.encode_prompt(llama.format_chat(chat("Hello")))
        bad = _Request([*ids[:-1], vocab + 7], GREEDY, 4, TextStream())  # an id outside the embedding
        backend._scheduler.submit(bad)
        results = _together([s.text for s in good])  # the same length as "Hello": one prefill group
        assert results == [llama.stream(chat(p), GREEDY).text() for p in ("Hello", "Paris")]
        assert isinstance(bad.tokens.get(timeout=30), BaseException)
    finally:
        backend.close()


def test_choose_isolates_a_row_that_cannot_be_sampled():
    import torch

    from agent.backends.batching import _Request
    from agent.models.textstream import TextStream

    rows = [_Request([1], o, 4, TextStream()) for o in (SAMPLED, _poisoned(seed=HUGE_SEED), GREEDY)]
    logits = torch.randn(3, 16)
    tokens, errors = choose_tokens(logits, rows, torch.zeros(3, 16, dtype=torch.bool))
    assert set(errors) == {1} and "seed" in str(errors[1])
    assert tokens[2] == int(logits[2].argmax())


# ---- the fast decoder ----------------------------------------------------------------------
def test_the_fast_decoder_serves_the_next_request_unharmed(llama):
    from agent.models.fastpath import FastDecoder

    decoder = FastDecoder(llama.model, weights="fp32")
    ids = llama.encode_prompt(llama.format_chat(chat("Hello there")))
    before = list(decoder.generate(ids, GREEDY))
    for poison in (_poisoned(seed=HUGE_SEED), _poisoned(temperature=float("nan"))):
        with pytest.raises((ValueError, RuntimeError, InputError)):
            list(decoder.generate(ids, poison))
        assert list(decoder.generate(ids, GREEDY)) == before


# ---- the agent -----------------------------------------------------------------------------
def test_a_failing_turn_among_good_ones_leaves_no_empty_session(fake_config, llama, tmp_path):
    from agent import Agent

    persona = tmp_path / "short.j2"
    persona.write_text("You are {{ agent_name }}.")
    backend = BatchingBackend(llama, window_ms=50)
    agent = Agent(fake_config(persona=str(persona), generation={"max_new_tokens": 8, "temperature": 0.0}),
                  backend=backend)
    try:
        too_long = "word " * 400  # more tokens than the tiny model reads
        results = _together([lambda u=u: agent.chat("Hello", user_id=u) for u in ("a", "b", "c")]
                            + [lambda: agent.chat(too_long, user_id="bad")])
        assert [r.user_id for r in results[:3]] == ["a", "b", "c"]
        assert all(r.text and r.finish_reason in ("stop", "length") for r in results[:3])
        assert isinstance(results[3], InputError)
        assert agent.sessions("bad") == []  # the failed turn's fresh session is gone
    finally:
        agent.close()


# ---- the server ----------------------------------------------------------------------------
def test_the_issue_seed_case_three_good_requests_200_the_bad_one_400(fake_config, llama, serve, tmp_path):
    import httpx

    from agent import Agent
    from agent.server import create_app

    persona = tmp_path / "short.j2"
    persona.write_text("You are {{ agent_name }}.")
    backend = BatchingBackend(llama, window_ms=100)
    agent = Agent(fake_config(persona=str(persona), generation={"max_new_tokens": 8}), backend=backend)
    try:
        with serve(create_app(agent)) as url, httpx.Client(base_url=url, timeout=60) as client:
            for run in range(2):
                def ask(user: str, **extra):
                    return lambda: client.post("/v1/chat/completions", json={
                        "model": "llmos", "user": user, "temperature": 0.7, "max_tokens": 8,
                        "messages": [{"role": "user", "content": "Hi"}], **extra})

                codes = _together([ask(f"u{run}{i}") for i in range(3)] + [ask(f"bad{run}", seed=HUGE_SEED)])
                assert [r.status_code for r in codes] == [200, 200, 200, 400], [r.text for r in codes]
                error = codes[3].json()["error"]
                assert error["param"] == "seed" and "seed" in error["message"]
                assert agent.sessions(f"bad{run}") == []  # nothing stored for the rejected request
    finally:
        agent.close()


def test_a_bad_seed_alone_is_400_on_both_apis_and_stores_nothing(make_app, client_for):
    app, agent, _ = make_app()
    client = client_for(app)
    bad = client.post("/v1/chat/completions", json={"model": "llmos", "user": "eve", "seed": HUGE_SEED,
                                                    "messages": [{"role": "user", "content": "hi"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seed"
    assert "seed" in bad.json()["error"]["message"]
    sid = client.post("/v1/sessions", json={"user": "eve"}).json()["id"]
    bad = client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi", "seed": -(2**63) - 1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seed"
    assert [s.turns for s in agent.sessions("eve")] == [0]  # only the session made on purpose


def test_a_backend_failure_in_a_new_conversation_leaves_no_session(make_app, client_for):
    from agent.backends.fake import failing

    app, agent, backend = make_app()
    client = client_for(app)
    backend.enqueue(failing())
    reply = client.post("/v1/chat/completions", json={"model": "llmos", "user": "flo", "messages": [
        {"role": "user", "content": "I am Flo."}, {"role": "assistant", "content": "Hi Flo."},
        {"role": "user", "content": "and now?"}]})
    assert reply.status_code == 502
    assert agent.sessions("flo") == []  # neither the imported history nor an empty session stays
    again = client.post("/v1/chat/completions", json={"model": "llmos", "user": "flo", "messages": [
        {"role": "user", "content": "I am Flo."}, {"role": "assistant", "content": "Hi Flo."},
        {"role": "user", "content": "and now?"}]})
    assert again.status_code == 200
    [session] = agent.sessions("flo")
    assert session.turns == 2  # the imported turn and this one, once


def test_rejected_requests_give_their_concurrency_slot_back(make_app, client_for):
    """Found by the fuzzer: a 400 after the slot was taken kept it, and after
    ``max_concurrent`` such requests the key got 429 for good."""
    app, _, _ = make_app(server={"max_concurrent": 2})
    client = client_for(app)
    for bad in ([{"role": "assistant", "content": "hi"}],
                [{"role": "user", "content": [{"type": "image_url"}]}]):
        for _ in range(3):
            answer = client.post("/v1/chat/completions", json={"model": "llmos", "messages": bad})
            assert answer.status_code == 400, answer.text
    image = [{"role": "user", "content": [{"type": "image_url"}]}]
    for _ in range(3):  # the plain model call refuses it too
        plain = client.post("/v1/chat/completions", json={"model": "fake", "messages": image})
        assert plain.status_code == 400, plain.text
    ok = client.post("/v1/chat/completions", json={"model": "llmos", "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200, ok.text
