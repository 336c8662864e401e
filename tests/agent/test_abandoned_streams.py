"""A stream that is abandoned half-way (a skill stops reading once it has what it needs)
must not keep the model's generation lock: the next generation on the same model, from the
same thread or another one, proceeds instead of waiting forever."""

import gc
import threading

import pytest

from agent import load_model
from skills.text import ask_model


@pytest.fixture(params=["llama", "gpt2"])  # the fast CPU decoder, and transformers' generate
def model(request, tiny_model_dir):
    return load_model(str(tiny_model_dir(request.param)), device="cpu")


@pytest.fixture
def hello(model):
    """The greedy continuation of "Hello" on a model nothing else has used: what the
    generation after an abandoned stream must give (not merely some text)."""
    text = _hello(model)
    assert text and text == _hello(model), "greedy generation repeats itself"
    return text


def _hello(model):
    return model.generate_text("Hello", max_new_tokens=3, temperature=0)


def _without_gc(fn):
    """Run ``fn`` with the cycle collector off, so only reference counting frees things."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return fn()
    finally:
        if enabled:
            gc.enable()


def _finishes(fn, timeout=30.0):
    done = threading.Event()
    box = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as exc:  # surfaced below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, daemon=True).start()
    assert done.wait(timeout), "generation waited for a lock that an abandoned stream holds"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_dropped_half_read_stream_releases_the_lock(model, hello):
    def run():
        stream = model.stream("Once upon a time", max_new_tokens=20, temperature=0)
        next(stream)
        del stream  # dropped unfinished: reference counting alone must free the lock
        return model.generate_text("Hello", max_new_tokens=3, temperature=0)

    assert _finishes(lambda: _without_gc(run)) == hello


def test_a_new_stream_on_the_same_thread_supersedes_an_unfinished_one(model, hello):
    def run():
        first = model.stream("Once upon a time", max_new_tokens=20, temperature=0)
        next(first)  # still referenced, not finished
        second = model.generate_text("Hello", max_new_tokens=3, temperature=0)
        assert first.finish_reason == "cancelled"
        assert list(first) == []
        return second

    assert _finishes(lambda: _without_gc(run)) == hello


def test_ask_model_with_until_leaves_the_model_free(model, hello):
    def run():
        ask_model(model, "system", "write", max_new_tokens=20, until=lambda text: len(text) > 0)
        return model.generate_text("Hello", max_new_tokens=3, temperature=0)

    assert _finishes(lambda: _without_gc(run)) == hello


def test_closing_a_stream_releases_the_lock_for_other_threads(model, hello):
    stream = model.stream("Once upon a time", max_new_tokens=20, temperature=0)
    next(stream)
    stream.close()
    assert stream.finish_reason == "cancelled"
    assert _finishes(lambda: _hello(model)) == hello
