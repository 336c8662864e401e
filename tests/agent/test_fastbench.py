"""``python -m agent.models.fastbench --peer llama-cpp``: the side-by-side comparison's plumbing
on fake engines (interleaving, no shared prefix, the ratios' direction, the JSON line) and the
error without llama-cpp-python. No timing is asserted: speed is the benchmark's business."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ModelError
from agent.models import fastbench
from agent.models.fastbench import compare_engines, peer_ratios


def _clock(ttft_s: float, step_s: float):
    """A fake engine's timer: fixed prefill and step times, runs recorded in ``calls``."""
    calls: list[list[int]] = []

    def timer(prompt: list[int], new_tokens: int) -> list[float]:
        calls.append(list(prompt))
        return [0.0] + [ttft_s + i * step_s for i in range(new_tokens)]

    return timer, calls


def test_engines_take_turns_on_fresh_prompts_and_the_warm_up_is_dropped():
    order: list[str] = []
    a, a_calls = _clock(0.1, 0.01)
    b, b_calls = _clock(0.2, 0.02)

    def tracked(name: str, timer: Any):
        def run(prompt: list[int], n: int) -> list[float]:
            order.append(name)
            return timer(prompt, n)
        return run

    text = list(range(100, 160))
    out = compare_engines({"ours": tracked("A", a), "peer": tracked("B", b)}, text, (8, 20), new_tokens=11, repeats=3)
    assert order == ["A", "B"] * 8  # (3 repeats + 1 warm-up) x 2 prompt lengths, interleaved
    assert a_calls == b_calls  # the same prompts, as token ids, to both engines
    assert [len(p) for p in a_calls] == [8] * 4 + [20] * 4
    firsts = [p[0] for p in a_calls[:4]]
    assert len(set(firsts)) == 4  # each round starts elsewhere: no prefix shared with the last run
    assert out["ours"][20]["ttft_ms"] == pytest.approx(100.0) and out["peer"][20]["ttft_ms"] == pytest.approx(200.0)
    assert out["ours"][8]["decode_tok_s"] == pytest.approx(100.0) and out["peer"][8]["decode_tok_s"] == pytest.approx(50.0)
    assert len(out["ours"][8]["decode_tok_s_runs"]) == 3  # the warm-up run is not among the figures


def test_ratios_are_ours_over_theirs_at_the_long_prompt():
    ours = {48: {"decode_tok_s": 90.0, "ttft_ms": 40.0}, 500: {"decode_tok_s": 120.0, "ttft_ms": 300.0}}
    theirs = {48: {"decode_tok_s": 100.0, "ttft_ms": 20.0}, 500: {"decode_tok_s": 100.0, "ttft_ms": 400.0}}
    ratios = peer_ratios(ours, theirs, at=500)
    assert ratios == {"ratio_prompt_tokens": 500, "decode_ratio_vs_peer": 1.2, "ttft_ratio_vs_peer": 0.75}
    assert peer_ratios(ours, {48: theirs[48]}, at=500)["decode_ratio_vs_peer"] is None


def test_peer_without_llama_cpp_python_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError

    def no_model(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the model must not load before the peer is found")

    monkeypatch.setattr("agent.models.loader.load_configured", no_model)
    with pytest.raises(SystemExit) as exited:
        fastbench.main(["--peer", "llama-cpp", "--json"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "llama-cpp-python" in err and "pip install -e '.[bench]'" in err and "Traceback" not in err
    with pytest.raises(ModelError, match="unknown peer"):
        fastbench.bench_peer("vllm")


class _FakeDecoder:
    weights, prefill, activations, threads = "int4", "int8", "bf16", "auto"
    _chooser = types.SimpleNamespace(choice=1)  # its decode steps settled on one thread

    def thread_count(self) -> int | None:
        return None  # torch's setting for the prompt

    def reset(self) -> None:
        pass

    def generate(self, prompt: list[int], options: Any, eos_token_ids: Any = None) -> Iterator[int]:
        assert eos_token_ids == ()  # EOS ignored: every run makes the same number of tokens
        yield from range(options.max_new_tokens)


class _FakeLlama:
    made: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        _FakeLlama.made = kwargs
        self.resets = 0
        self.ctx = "ctx"

    def reset(self) -> None:
        self.resets += 1

    def generate(self, prompt: list[int], **kwargs: Any) -> Iterator[int]:
        assert kwargs["temp"] == 0.0 and self.resets  # greedy, the cache emptied first
        while True:
            yield 7


def _fake_llama_cpp(thread_calls: list[tuple[Any, ...]]) -> Any:
    lib = types.SimpleNamespace(llama_model_default_params=lambda: types.SimpleNamespace(use_extra_bufts=True))
    return types.SimpleNamespace(Llama=_FakeLlama, __version__="0.0-fake", llama_cpp=lib,
                                 llama_set_n_threads=lambda *a: thread_calls.append(a))


def test_peer_json_line_has_both_engines_and_the_ratios(monkeypatch, capsys, tmp_path: Path):
    torch = pytest.importorskip("torch")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    lm = types.SimpleNamespace(fast=_FakeDecoder(),
                               tokenizer=lambda text, add_special_tokens=True: {"input_ids": list(range(300))})
    thread_calls: list[tuple[Any, ...]] = []
    fake = _fake_llama_cpp(thread_calls)
    monkeypatch.setattr(fastbench, "_import_llama_cpp", lambda: fake)
    monkeypatch.setattr(fastbench, "_llama_model", lambda lc, path, threads, n_ctx: (
        _FakeLlama(model_path=str(path), n_threads=threads, n_threads_batch=threads), {"extra_bufts": True, "note": None}))
    monkeypatch.setattr("agent.models.loader.load_configured", lambda config: lm)
    monkeypatch.setattr("agent.models.embedded.embedded_gguf_path", lambda: gguf)
    fastbench.main(["--peer", "llama-cpp", "--json", "--repeats", "2", "--new-tokens", "5"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"decode_ratio_vs_peer", "ttft_ratio_vs_peer", "threads", "cpu_flags", "ours", "llama_cpp",
            "peer_version", "gguf", "threads_per_run"} <= set(report)
    assert report["ratio_prompt_tokens"] == 500 and set(report["ours"]["prompts"]) == {"48", "500"}
    assert set(report["cpu_flags"]) == {"avx2", "avx512_bf16", "amx_bf16"}
    threads = torch.get_num_threads()
    assert report["threads"] == threads and _FakeLlama.made["model_path"] == str(gguf)
    # llama.cpp runs on the threads ours just used: the prompt on torch's count, steps on its choice
    assert thread_calls and all(call == ("ctx", 1, threads) for call in thread_calls)
    assert report["threads_per_run"][0] == [threads, 1] and len(report["threads_per_run"]) == 6
    assert report["ours"]["weights"] == "int4" and len(report["llama_cpp"]["prompts"]["500"]["ttft_ms_runs"]) == 2
    assert report["llama_cpp"]["extra_bufts"] is True
    fastbench._print_peer({**report, "llama_cpp": {**report["llama_cpp"], "note": "no AMX"}})
    table = capsys.readouterr().out
    assert f"threads (prompt/steps) {threads}/1 of {threads}" in table and "llama.cpp: no AMX" in table
    assert "(above 1: llmos faster)" in table and "(below 1: llmos faster)" in table


def test_llama_cpp_loads_without_amx_where_its_probe_dies(monkeypatch, tmp_path: Path):
    fake = _fake_llama_cpp([])
    default = fake.llama_cpp.llama_model_default_params
    seen: dict[str, Any] = {}

    class Recording(_FakeLlama):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            seen["use_extra_bufts"] = fake.llama_cpp.llama_model_default_params().use_extra_bufts

    fake.Llama = Recording
    died = types.SimpleNamespace(returncode=-4, stderr="Fatal Python error: Illegal instruction")
    monkeypatch.setattr("subprocess.run", lambda *a, **k: died)
    llm, info = fastbench._llama_model(fake, tmp_path / "m.gguf", 2, 640)
    assert seen["use_extra_bufts"] is False and info["extra_bufts"] is False
    assert "-4" in info["note"] and "Illegal instruction" in info["note"]
    assert fake.llama_cpp.llama_model_default_params is default  # put back after the load
    assert _FakeLlama.made["n_threads"] == _FakeLlama.made["n_threads_batch"] == 2
