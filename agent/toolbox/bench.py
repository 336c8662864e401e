"""``llmos bench``: load time, time to first token, decode speed against the memory-bandwidth
bound, per-stage turn latency and peak memory, on this machine with the default model.

Benchmarks, not tests: the figures are medians over repeats, and the targets are
reported next to them (`ok` true/false) rather than asserted.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.models.timing import measure_bandwidth_gbs, measure_generation, median, prompt_of, weight_bytes

__all__ = ["run_bench"]

def _load_times(name: str, quick: bool) -> dict[str, float]:
    from agent.models.embedded import convert_gguf, embedded_gguf_path
    from agent.models.loader import load_model

    out: dict[str, float] = {}
    if not quick and name == "smollm2-135m":
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            convert_gguf(embedded_gguf_path(), Path(tmp) / "cold")
            out["load_s_cold"] = round(time.perf_counter() - t, 2)
    times = []
    for _ in range(1 if quick else 3):
        t = time.perf_counter()
        load_model(name)
        times.append(time.perf_counter() - t)
    out["load_s_cached"] = median(times)
    return out


def _turn_stages(name: str, turns: int) -> dict[str, Any]:
    """Median per-stage latency of real turns (memory and understanding on)."""
    from agent.config import load_config
    from agent.dialogue import Agent

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        agent = Agent(load_config(environ={}, overrides={"model": {"name": name}, "data_dir": tmp,
                                                         "generation": {"max_new_tokens": 48, "temperature": 0}}))
        startup = time.perf_counter() - t
        questions = ["Hi there, my name is Sam and I live in Lyon.", "What is the capital of France?",
                     "Can you explain what photosynthesis is?", "Where do I live?", "Thanks, goodbye!"]
        stages: dict[str, list[float]] = {}
        session = None
        for i in range(turns):
            reply = agent.chat(questions[i % len(questions)], user_id="bench", session_id=session)
            session = reply.session_id
            for stage, ms in reply.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        agent.close()
    return {"agent_start_s": round(startup, 2), "turn_stage_ms": {k: median(v) for k, v in stages.items()}}


_FRESH_START = """
import json, sys
from agent.config import load_config
from agent.dialogue import Agent
agent = Agent(load_config(environ={}, overrides=json.loads(sys.argv[1])))
print("ready", "transformers" in sys.modules, flush=True)
first = agent.chat(sys.argv[2], user_id="bench").timings_ms.get("first_token", 0) if sys.argv[2] else 0
# VmHWM: this process's own peak (ru_maxrss would include the parent's, inherited at fork)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("rss", hwm / 1024, first, flush=True)
agent.close()
"""


def fresh_start(name: str, repeats: int = 3, turn: str = "") -> dict[str, Any]:
    """Seconds from launching a new Python process to ``Agent()`` returning in it (imports,
    model and stores included: what a user waits for), the median of ``repeats``; whether
    that start-up imported transformers; and with ``turn``, the peak RSS of the process
    after answering it once (one agent's memory, where this process holds several models)
    and that first turn's time to first token."""
    import subprocess
    import sys

    times, imported, rss = [], False, []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = json.dumps({"model": {"name": name}, "data_dir": tmp,
                                "generation": {"max_new_tokens": 16, "temperature": 0}})
        for i in range(repeats):
            t = time.perf_counter()
            with subprocess.Popen([sys.executable, "-c", _FRESH_START, overrides, turn if i == 0 else ""],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as child:
                assert child.stdout is not None
                line = child.stdout.readline()
                times.append(time.perf_counter() - t)
                last = child.stdout.read().split()
                child.wait()
            if not line.startswith("ready") or child.returncode:
                raise RuntimeError(f"the start-up probe failed (exit {child.returncode}); run `llmos ask hi` to see why")
            imported = imported or line.split()[1] == "True"
            if turn and i == 0 and last[:1] == ["rss"]:
                rss.append((float(last[1]), float(last[2])))
    out: dict[str, Any] = {"agent_start_fresh_s": median(times), "agent_start_imports_transformers": imported}
    if rss:
        # the first turn of a fresh process: models still warming up, int8 weights maybe
        # still packing (the prefill waits for them)
        out["agent_turn_peak_rss_mb"] = round(rss[0][0], 1)
        out["agent_fresh_first_token_ms"] = round(rss[0][1], 1)
    return out


def run_bench(model: str | None = None, *, as_json: bool = False, quick: bool = False,
              memory: bool = False, quant: bool = False, server: bool = False) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from agent.models.loader import load_model

    name = model or "smollm2-135m"
    repeats = 1 if quick else 3
    results: dict[str, Any] = {"model": name, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    results.update(_load_times(name, quick))
    lm = load_model(name)
    results["device"], results["dtype"] = lm.device, str(lm.dtype)
    results["decoder"] = f"fast:{lm.fast.weights}" if lm.fast is not None else "transformers.generate"
    results.update(_kernel_choices(lm))
    lm.generate_text("warm up", max_new_tokens=4, temperature=0)
    short = measure_generation(lm, 50, repeats=repeats)
    long = measure_generation(lm, 500, repeats=repeats)
    results.update({
        "prompt_tokens_50": short["prompt_tokens"], "ttft_ms_50": short["ttft_ms"],
        "decode_tokens_per_s_50": short["decode_tokens_per_s"],
        "prompt_tokens_500": long["prompt_tokens"], "ttft_ms_500": long["ttft_ms"],
        "decode_tokens_per_s_500": long["decode_tokens_per_s"],
        "decode_tokens_per_s": short["decode_tokens_per_s"],
    })
    bandwidth = measure_bandwidth_gbs()
    weights = weight_bytes(lm)
    bound = bandwidth * 1e9 / weights
    results.update({"bandwidth_gbs": bandwidth, "weight_mb_per_token": round(weights / 1e6, 1),
                    "bound_tokens_per_s": round(bound, 1),
                    "decode_vs_bound": round(short["decode_tokens_per_s"] / bound, 3)})
    results.update(_turn_stages(name, 3 if quick else 5))
    long_turn = prompt_of(lm, 500)[0]["content"]
    results.update(fresh_start(name, repeats, turn=long_turn))
    results.update(_understanding_bench(quick))
    if memory:
        from memory.bench import bench_memory

        results["memory"] = bench_memory()
    if quant:
        from agent.toolbox.quantbench import bench_quantization

        results["quantization"] = bench_quantization(name)
    if server:
        from agent.server.bench import bench_server

        results["server"] = bench_server(clients=(1, 4, 8, 16))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["targets"] = {
        "decode_tokens_per_s>=30": results["decode_tokens_per_s"] >= 30,
        "ttft_ms_500<1000": results["ttft_ms_500"] < 1000,
        "agent_start_fresh_s<5": results["agent_start_fresh_s"] < 5,
    }
    print(json.dumps(results, indent=2) if as_json else _table(results))
    return 0


def _kernel_choices(lm: Any) -> dict[str, Any]:
    """What the auto choices settled on here, and the CPU they were made from."""
    from agent.models.device import cpu_flags
    from agent.models.fastquant import kernel_isa

    fast = lm.fast
    return {"cpu_flags": cpu_flags(), "kernel_isa": kernel_isa(),
            "weights": fast.weights if fast is not None else str(lm.dtype),
            "act_dtype": fast.activations if fast is not None else str(lm.dtype),
            "prefill": fast.prefill if fast is not None else "transformers"}


def _understanding_bench(quick: bool) -> dict[str, Any]:
    from agent.understand.bench import bench_classify

    figures = bench_classify(n=20 if quick else 50)
    return {"classify_ms_p50": figures.get("p50_ms"), "classify": figures}


def _table(results: dict[str, Any]) -> str:
    lines = []
    for key, value in results.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k:<28} {v}" for k, v in value.items()]
        else:
            lines.append(f"{key:<30} {value}")
    return "\n".join(lines)
