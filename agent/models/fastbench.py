"""Benchmark of :class:`agent.models.fastpath.FastDecoder` against Hugging Face ``generate``.

``bench_decoder`` measures one configuration (decode tokens/s, time to first token,
perplexity on a fixed English paragraph); ``llmos bench`` calls it. Run this module for the
comparison table::

    python -m agent.models.fastbench                  # the embedded SmolLM2-135M
    python -m agent.models.fastbench --model DIR --prompts 50,500 --repeats 5 --json
    python -m agent.models.fastbench --thread-choice 1   # 1 thread vs 2 vs auto, one busy process beside
    python -m agent.models.fastbench --prefill-quality ../shared/data/squad_v1.1/dev-v1.1.json  # int8 vs fp32 prefill
    python -m agent.models.fastbench --peer llama-cpp --json   # llmos ask's decoder vs llama.cpp, same GGUF

Figures are medians over ``repeats`` runs; on a shared machine compare ratios, not
absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["bench_decoder", "bench_peer", "compare_engines", "peer_ratios", "perplexity", "PERPLEXITY_TEXT",
           "ENGINES", "PEERS"]

PERPLEXITY_TEXT = (
    "The lighthouse stood at the end of a narrow spit of land, where the river met the sea. "
    "For more than a century its keepers had climbed the spiral stairs each evening to light the "
    "lamp, and each morning to put it out again. The work was simple but it could not be skipped: "
    "ships coming home in the dark depended on that steady beam to find the channel between the "
    "sandbanks. When the lamp was finally automated, the last keeper moved into a small house in "
    "the village. She kept a logbook anyway, writing down the weather, the boats that passed and "
    "the birds that rested on the rocks. Years later the logbook was given to the local museum, "
    "where visitors still read her careful notes about storms, calm days and the slow change of the "
    "seasons. Scientists studying the coast found the records useful, because they showed how the "
    "shoreline had moved and how the number of seabirds had fallen over time. What began as a habit "
    "of one patient person became a small but valuable piece of history, a reminder that careful "
    "observation, repeated every day, can tell us things that no single measurement ever could."
)
"""A fixed paragraph of plain English (~230 tokens) for perplexity checks."""

ENGINES = ("fast", "hf")
"""``fast``: FastDecoder in a weights mode; ``hf``: Hugging Face ``generate`` in fp32/bf16."""

PEERS = ("llama-cpp",)
"""Other engines ``--peer`` runs side by side with ours (optional installs: the ``bench`` extra)."""

Timer = Callable[[list[int], int], list[float]]
"""Runs one greedy generation of ``new_tokens`` from a prompt, nothing cached; returns
``[start, time of token 1, ..., time of token n]``."""


def perplexity(logits: Any, ids: list[int]) -> float:
    """exp(mean next-token cross-entropy) of ``ids`` under ``logits`` ``(len(ids), vocab)``."""
    import torch
    import torch.nn.functional as F

    target = torch.tensor(ids[1:])
    return math.exp(float(F.cross_entropy(logits[:-1].float(), target)))


def _load(path_or_model: Any) -> Any:
    if not isinstance(path_or_model, (str, Path)):
        return path_or_model
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path_or_model), dtype="float32").eval()


def _tokenizer_ids(model: Any, path_or_model: Any) -> list[int]:
    """Token ids of PERPLEXITY_TEXT with the model's tokenizer."""
    from transformers import AutoTokenizer

    source = path_or_model if isinstance(path_or_model, (str, Path)) else model.config._name_or_path
    tok = AutoTokenizer.from_pretrained(str(source))
    return list(tok(PERPLEXITY_TEXT)["input_ids"])


def _prompt(text_ids: list[int], n: int, salt: int) -> list[int]:
    """``n`` prompt tokens: the paragraph repeated, rotated by ``salt`` so no two runs share a
    prefix (FastDecoder would otherwise reuse its cache and time nothing)."""
    body = text_ids[salt % len(text_ids):] + text_ids
    while len(body) < n:
        body += text_ids
    return body[:n]


def bench_decoder(path_or_model: Any, *, weights: str = "int8", prompt_tokens: int = 500,
                  new_tokens: int = 64, repeats: int = 3, engine: str = "fast") -> dict[str, Any]:
    """Time one configuration; returns median ``decode_tok_s``, ``ttft_ms`` and ``perplexity``.

    ``path_or_model``: a transformers directory or an already loaded model (fp32).
    ``weights``: int8 / bf16 / fp32 for ``engine="fast"``; fp32 / bf16 for ``engine="hf"``.
    TTFT is the prefill of ``prompt_tokens`` plus the first token; decode tokens/s counts
    the tokens after the first, greedy, with EOS ignored so every run makes ``new_tokens``.
    """
    import torch

    from agent.errors import ModelError

    if engine not in ENGINES:
        raise ModelError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    model = _load(path_or_model)
    text_ids = _tokenizer_ids(model, path_or_model)
    t0 = time.perf_counter()
    if engine == "fast":
        from agent.models.fastpath import FastDecoder

        runner: Any = FastDecoder(model, weights=weights)
        ppl = perplexity(runner.logits(text_ids), text_ids)
    else:
        runner = model if weights == "fp32" else _hf_copy(model, weights)
        with torch.inference_mode():
            ppl = perplexity(runner(torch.tensor([text_ids])).logits[0], text_ids)
    setup_s = time.perf_counter() - t0
    ttfts, rates = [], []
    for r in range(max(1, repeats) + 1):  # the first run warms up and is dropped
        prompt = _prompt(text_ids, prompt_tokens, salt=7 * r + 1)
        times = _time_fast(runner, prompt, new_tokens) if engine == "fast" else _time_hf(runner, prompt, new_tokens)
        if r:
            ttft, rate = _figures(times)
            ttfts.append(ttft)
            rates.append(rate)
    return {
        "engine": engine, "weights": weights, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
        "repeats": max(1, repeats), "threads": torch.get_num_threads(),
        "decode_tok_s": statistics.median(rates), "ttft_ms": statistics.median(ttfts),
        "perplexity": ppl, "setup_s": setup_s,
    }


def _figures(times: list[float]) -> tuple[float, float]:
    """(time to first token in ms, decode tokens/s after the first token) of one run's
    ``[start, t1, ..., tn]``; the first token is prefill's, so it is not a decode step."""
    rate = (len(times) - 2) / (times[-1] - times[1]) if len(times) > 2 and times[-1] > times[1] else float("nan")
    return (times[1] - times[0]) * 1e3, rate


def _hf_copy(model: Any, weights: str) -> Any:
    import copy

    import torch

    from agent.errors import ModelError

    if weights != "bf16":
        raise ModelError(f"engine 'hf' runs fp32 or bf16, not {weights!r}")
    return copy.deepcopy(model).to(torch.bfloat16)


def _time_fast(decoder: Any, prompt: list[int], new_tokens: int) -> list[float]:
    """[start, time of token 1, ..., time of token n]."""
    from agent.options import GenerationOptions

    options = GenerationOptions(temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0,
                                max_new_tokens=new_tokens)
    decoder.reset()
    times = [time.perf_counter()]
    for _ in decoder.generate(prompt, options, eos_token_ids=()):
        times.append(time.perf_counter())
    return times


def _time_hf(model: Any, prompt: list[int], new_tokens: int) -> list[float]:
    import torch

    times = [time.perf_counter()]

    class _Clock:  # a streamer: put() is called with the prompt, then once per new token
        calls = 0

        def put(self, _value: Any) -> None:
            self.calls += 1
            if self.calls > 1:
                times.append(time.perf_counter())

        def end(self) -> None:
            pass

    with torch.inference_mode():
        model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False, streamer=_Clock(), pad_token_id=0)
    return times


_CONFIGS = [("hf", "fp32"), ("hf", "bf16"), ("fast", "fp32"), ("fast", "bf16"), ("fast", "int8")]


def bench_threads(model: Any, *, busy: int = 0, new_tokens: int = 96, repeats: int = 3) -> dict[str, Any]:
    """Decode tokens/s (median of ``repeats`` replies) of the default fast decoder with one
    thread, with torch's thread count, and with ``threads="auto"`` (its first reply, which
    pays for the probing, and the next ones), while ``busy`` processes spin on the CPU."""
    import subprocess
    import sys

    import torch

    from agent.models.fastpath import FastDecoder
    from agent.options import GenerationOptions

    decoder = FastDecoder(model)
    prompt = list(range(100, 120))
    options = GenerationOptions(temperature=0, max_new_tokens=new_tokens, repetition_penalty=1.0)
    eos: frozenset[int] = frozenset()  # every reply runs to new_tokens

    def one() -> float:
        began = time.perf_counter()
        count = sum(1 for _ in decoder.generate(prompt, options, eos_token_ids=eos))
        return count / (time.perf_counter() - began)

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        out: dict[str, Any] = {"busy_processes": busy, "torch_threads": torch.get_num_threads()}
        for label, threads in (("one_thread", 1), ("torch_threads", None)):
            decoder.threads = threads
            out[f"{label}_tok_s"] = round(statistics.median(one() for _ in range(repeats)), 1)
        decoder.threads = "auto"
        out["auto_first_tok_s"] = round(one(), 1)
        out["auto_tok_s"] = round(statistics.median(one() for _ in range(repeats)), 1)
        out["auto_choice"] = decoder._chooser.choice if decoder._chooser else None
        return out
    finally:
        for spinner in spinners:
            spinner.kill()


def _passages(path: Path, tokenizer: Any, count: int, tokens: int) -> list[list[int]]:
    """``count`` token sequences of ``tokens`` from ``path``: a SQuAD-format JSON file (its
    paragraphs, in order) or plain text (split on blank lines)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    else:
        paragraphs = [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    out, current = [], ""
    for paragraph in paragraphs:
        current += paragraph + "\n\n"
        ids = tokenizer(current)["input_ids"]
        if len(ids) >= tokens:
            out.append(list(ids[:tokens]))
            current = ""
            if len(out) == count:
                break
    return out


def bench_prefill(data: Path, *, model: str = "smollm2-135m", passages: int = 8, tokens: int = 512,
                  prompt_tokens: int = 500, repeats: int = 5) -> list[dict[str, Any]]:
    """Prefill quality and speed per prefill mode (fp32, int8): mean perplexity of
    ``passages`` passages of ``tokens`` tokens from ``data`` through the prefill path, and the
    median cold time to first token of a ``prompt_tokens`` chat prompt (nothing cached)."""
    import torch

    from agent.models.loader import load_model
    from agent.models.timing import measure_generation

    rows = []
    for mode in ("fp32", "int8"):
        lm = load_model(model, prefill=mode)
        decoder = lm.fast
        seqs = _passages(data, lm.tokenizer, passages, tokens)
        with torch.inference_mode():
            ppl = statistics.mean(perplexity(decoder.logits(ids), ids) for ids in seqs)
        decoder.reset()
        lm.generate_text("warm up " * 40, max_new_tokens=2, temperature=0)
        figures = measure_generation(lm, prompt_tokens, new_tokens=8, repeats=repeats)
        rows.append({"prefill": decoder.prefill, "perplexity": round(ppl, 4), "passages": len(seqs),
                     "tokens": tokens, "ttft_ms": round(figures["ttft_ms"], 1),
                     "prompt_tokens": figures["prompt_tokens"], "threads": torch.get_num_threads()})
    base = rows[0]
    for row in rows:
        row["perplexity_vs_fp32"] = round(row["perplexity"] / base["perplexity"], 4)
        row["ttft_vs_fp32"] = round(row["ttft_ms"] / base["ttft_ms"], 3)
    return rows


# ---- side by side with another engine (--peer) ----------------------------------------------

def compare_engines(timers: dict[str, Timer], text_ids: list[int], prompts: tuple[int, ...], *,
                    new_tokens: int = 64, repeats: int = 5) -> dict[str, dict[int, dict[str, Any]]]:
    """Per engine and prompt length: median decode tokens/s and TTFT over ``repeats`` runs.

    The engines take turns run by run (A B A B ...), so a burst of load from a neighbour on a
    shared machine lands on both rather than on whichever happened to run then. A first round
    warms each engine up and is dropped. Every round rotates the prompt (``_prompt``'s salt),
    so no run shares a prefix with the one before and no engine times a cache hit.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in timers}
    for n in prompts:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in timers}
        for r in range(max(1, repeats) + 1):
            prompt = _prompt(text_ids, n, salt=7 * r + 1)
            for name, timer in timers.items():
                figures = _figures(timer(list(prompt), new_tokens))
                if r:
                    runs[name].append(figures)
        for name, pairs in runs.items():
            ttfts, rates = [p[0] for p in pairs], [p[1] for p in pairs]
            out[name][n] = {"decode_tok_s": round(statistics.median(rates), 2),
                            "ttft_ms": round(statistics.median(ttfts), 1),
                            "decode_tok_s_runs": [round(x, 2) for x in rates], "ttft_ms_runs": [round(x, 1) for x in ttfts]}
    return out


def peer_ratios(ours: dict[int, dict[str, Any]], theirs: dict[int, dict[str, Any]], at: int = 500) -> dict[str, Any]:
    """Ours over theirs at the ``at``-token prompt: ``decode_ratio_vs_peer`` (tokens/s; above 1
    we decode faster) and ``ttft_ratio_vs_peer`` (ms; below 1 our first token comes sooner).
    None where that prompt length was not measured."""
    a, b = ours.get(at) or {}, theirs.get(at) or {}

    def ratio(key: str) -> float | None:
        return round(a[key] / b[key], 3) if a.get(key) is not None and b.get(key) else None

    return {"ratio_prompt_tokens": at, "decode_ratio_vs_peer": ratio("decode_tok_s"),
            "ttft_ratio_vs_peer": ratio("ttft_ms")}


def _import_llama_cpp() -> Any:
    """llama-cpp-python, or an error that says how to install it (it is optional: it compiles
    llama.cpp from source, minutes on a small machine)."""
    from agent.errors import ModelError

    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError("--peer llama-cpp needs llama-cpp-python, which is not installed: run "
                         "pip install -e '.[bench]' (it compiles llama.cpp; set CMAKE_ARGS=\"-DGGML_NATIVE=ON\" "
                         "so it uses this CPU's AVX512/AMX, see docs/models.md)") from exc
    except (OSError, RuntimeError) as exc:  # installed, but its shared library does not load
        raise ModelError(f"llama-cpp-python is installed but does not load ({exc}); reinstall it: "
                         "pip install --force-reinstall --no-deps llama-cpp-python") from exc
    return llama_cpp


def _fast_timer(decoder: Any, used: list[tuple[int, int]]) -> Timer:
    """Our decoder's runs, each recording the threads it used, (prefill, decode): its
    ``threads="auto"`` picks them by the machine's load, so the peer is given the same."""
    import torch

    def run(prompt: list[int], new_tokens: int) -> list[float]:
        count = getattr(decoder, "thread_count", None) or getattr(decoder, "_thread_count", None)
        prefill = (count() if count else None) or torch.get_num_threads()  # None: torch's setting
        times = _time_fast(decoder, prompt, new_tokens)
        chooser = getattr(decoder, "_chooser", None)  # the decode steps' own choice (StepThreads)
        used.append((int(prefill), int(chooser.choice) if chooser else int(prefill)))
        return times
    return run


def _llama_timer(llama_cpp: Any, llm: Any, used: list[tuple[int, int]]) -> Timer:
    """llama.cpp through llama-cpp-python's ``generate``: greedy (temp 0), no penalties, EOS not
    checked (``generate`` leaves that to its caller), the cache emptied before each run, and
    the thread counts our decoder used in the run just before (``n_threads_batch`` for the
    prompt, ``n_threads`` for one-token steps)."""
    def run(prompt: list[int], new_tokens: int) -> list[float]:
        if used:
            prefill, decode = used[-1]
            llama_cpp.llama_set_n_threads(llm.ctx, decode, prefill)
        llm.reset()  # n_tokens = 0: generate() then finds no prefix to reuse
        times = [time.perf_counter()]
        for _ in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            times.append(time.perf_counter())
            if len(times) > new_tokens:
                break
        return times
    return run


_LLAMA_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]),
                      n_ctx=128, verbose=False)
for i, _ in enumerate(llm.generate(list(range(1000, 1048)), top_k=1, temp=0.0)):
    if i == 2:
        break
"""


def _llama_model(llama_cpp: Any, gguf: Path, threads: int, n_ctx: int) -> tuple[Any, dict[str, Any]]:
    """llama.cpp on ``gguf`` with its extra weight layouts (AMX, repacked) where they work.

    Those kernels are tried first in a child process: ggml's AMX path dies with SIGILL on
    some AMX machines (seen here: ``tilezero`` in ``ggml_backend_amx_mul_mat``, 0.3.36; see
    ggml-org/llama.cpp#26954), which would take this process with it. Where the child dies,
    the model loads without them (llama.cpp's ``--no-repack``), and the report says so."""
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", _LLAMA_PROBE, str(gguf), str(threads)], capture_output=True,
                           text=True, timeout=600, check=False)
    extra = probe.returncode == 0
    info = {"extra_bufts": extra, "note": None if extra else (
        f"llama.cpp with AMX/repacked weights exited with status {probe.returncode} here (-4: SIGILL); "
        f"measured without them (use_extra_bufts=False) {probe.stderr.strip()[-300:]}".strip())}
    lib = llama_cpp.llama_cpp  # llama-cpp-python's Llama() reads its model defaults from here
    default = lib.llama_model_default_params

    def params() -> Any:
        made = default()
        made.use_extra_bufts = extra
        return made

    lib.llama_model_default_params = params  # Llama() has no argument for it
    try:
        llm = llama_cpp.Llama(model_path=str(gguf), n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx,
                              verbose=False)
    finally:
        lib.llama_model_default_params = default
    return llm, info


def bench_peer(peer: str = "llama-cpp", *, prompts: tuple[int, ...] = (48, 500), new_tokens: int = 64,
               repeats: int = 5) -> dict[str, Any]:
    """``llmos ask``'s fast decoder against ``peer`` on the GGUF our default model is converted
    from, same prompts (as token ids), same thread count, runs interleaved; one JSON-able dict.

    Ours is loaded exactly as ``llmos ask`` loads it (:func:`~agent.models.loader.load_configured`
    on the default model config): its weights, prefill and ``threads="auto"`` are the defaults,
    so it may decode on fewer threads than ``threads`` when that is faster on a busy machine."""
    import os

    import torch

    from agent.errors import ModelError
    from agent.models.config import ModelConfig
    from agent.models.device import cpu_flags
    from agent.models.embedded import embedded_gguf_path
    from agent.models.loader import load_configured

    if peer not in PEERS:
        raise ModelError(f"unknown peer {peer!r}; use one of {', '.join(PEERS)}")
    llama_cpp = _import_llama_cpp()  # before the model loads: a missing install fails at once
    load_before = os.getloadavg()[0]
    lm = load_configured(ModelConfig())
    decoder = lm.fast
    if decoder is None:
        raise ModelError("the default model loaded without the fast decoder; nothing to compare")
    gguf = embedded_gguf_path()
    threads = torch.get_num_threads()
    llm, llama_info = _llama_model(llama_cpp, gguf, threads, max(prompts) + new_tokens + 64)
    text_ids = list(lm.tokenizer(PERPLEXITY_TEXT, add_special_tokens=False)["input_ids"])
    used: list[tuple[int, int]] = []
    figures = compare_engines({"llmos": _fast_timer(decoder, used), "llama_cpp": _llama_timer(llama_cpp, llm, used)},
                              text_ids, prompts, new_tokens=new_tokens, repeats=repeats)
    flags = set(cpu_flags())
    return {
        "peer": peer, "peer_version": getattr(llama_cpp, "__version__", None), "gguf": str(gguf),
        "threads": threads, "cpu_flags": {f: f in flags for f in ("avx2", "avx512_bf16", "amx_bf16")},
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "new_tokens": new_tokens, "repeats": repeats, "greedy": True, "eos_ignored": True,
        # per run, (prefill, decode) threads: ours chose them, llama.cpp's next run was given them
        "threads_per_run": [list(pair) for pair in used],
        "ours": {"engine": "llmos FastDecoder (llmos ask's default)", "weights": decoder.weights,
                 "prefill": decoder.prefill, "activations": decoder.activations, "threads": decoder.threads,
                 "prompts": figures["llmos"]},
        "llama_cpp": {"engine": "llama.cpp via llama-cpp-python", **llama_info, "prompts": figures["llama_cpp"]},
        **peer_ratios(figures["llmos"], figures["llama_cpp"], at=max(prompts)),
    }


def _print_peer(report: dict[str, Any]) -> None:
    used = sorted({f"{a}/{b}" for a, b in report["threads_per_run"]})
    print(f"{'engine':10} {'prompt':>6} {'decode tok/s':>12} {'TTFT ms':>9}   threads (prompt/steps) "
          f"{', '.join(used)} of {report['threads']}, {report['new_tokens']} new tokens, medians of {report['repeats']}")
    for key, label in (("ours", "llmos"), ("llama_cpp", "llama.cpp")):
        for n, row in report[key]["prompts"].items():
            print(f"{label:10} {n:>6} {row['decode_tok_s']:>12.1f} {row['ttft_ms']:>9.0f}")
    if report["llama_cpp"].get("note"):
        print(f"llama.cpp: {report['llama_cpp']['note']}")
    print(f"ours / llama.cpp at {report['ratio_prompt_tokens']} tokens: decode {report['decode_ratio_vs_peer']} "
          f"(above 1: llmos faster), TTFT {report['ttft_ratio_vs_peer']} (below 1: llmos faster)")


def _run_peer(args: argparse.Namespace) -> None:
    """``--peer``: the report as a table, or with ``--json`` as one JSON line (the last line);
    a missing peer is an error message and exit status 2, not a traceback."""
    import sys

    from agent.errors import LlmosError

    prompts = tuple(int(p) for p in (args.prompts or "48,500").split(","))
    try:
        report = bench_peer(args.peer, prompts=prompts, new_tokens=args.new_tokens, repeats=args.repeats or 5)
    except LlmosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.json:
        print(json.dumps(report), flush=True)
    else:
        _print_peer(report)


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table (or JSON rows) for a model directory."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="transformers directory (default: the embedded SmolLM2-135M)")
    parser.add_argument("--prompts", help="comma-separated prompt lengths in tokens (default: 50,500; 48,500 "
                                          "with --peer)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, help="runs per figure, medians reported (default: 3; 5 with --peer)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", help="comma-separated engine:weights pairs, e.g. fast:int8,hf:fp32")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    parser.add_argument("--thread-choice", type=int, metavar="BUSY", default=None,
                        help="instead: decode tokens/s with 1 thread, torch's threads and threads='auto' "
                             "while BUSY processes spin (0: as the machine is)")
    parser.add_argument("--prefill-quality", metavar="DATA", type=Path,
                        help="instead: prefill perplexity and cold TTFT, fp32 vs int8 prefill, on passages "
                             "of DATA (SQuAD JSON or plain text), e.g. ../shared/data/squad_v1.1/dev-v1.1.json")
    parser.add_argument("--peer", choices=PEERS,
                        help="instead: llmos ask's fast decoder against llama.cpp (llama-cpp-python: pip install "
                             "-e '.[bench]') on the same GGUF and thread count, runs interleaved; "
                             "decode_ratio_vs_peer = ours/theirs tokens/s (above 1: llmos decodes faster), "
                             "ttft_ratio_vs_peer = ours/theirs time to first token at 500 tokens (below 1: llmos "
                             "answers sooner)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peer:
        _run_peer(args)
        return
    args.prompts = args.prompts or "50,500"
    args.repeats = args.repeats or 3
    if args.prefill_quality is not None:
        for row in bench_prefill(args.prefill_quality, model=args.model or "smollm2-135m", repeats=args.repeats):
            print(json.dumps(row), flush=True)
        return
    if args.model:
        path = Path(args.model)
    else:
        from agent.models.embedded import ensure_converted

        path = ensure_converted()
    model = _load(path)
    model.config._name_or_path = str(path)
    if args.thread_choice is not None:
        print(json.dumps(bench_threads(model, busy=args.thread_choice, repeats=args.repeats)))
        return
    configs = [tuple(c.split(":")) for c in args.only.split(",")] if args.only else _CONFIGS
    if not args.json:
        print(f"{'engine':8} {'weights':7} {'prompt':>6} {'decode tok/s':>12} {'TTFT ms':>9} {'ppl':>8}")
    for n in (int(p) for p in args.prompts.split(",")):
        for engine, weights in configs:
            row = bench_decoder(model, weights=weights, prompt_tokens=n, new_tokens=args.new_tokens,
                                repeats=args.repeats, engine=engine)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{engine:8} {weights:7} {n:>6} {row['decode_tok_s']:>12.1f} {row['ttft_ms']:>9.0f} "
                      f"{row['perplexity']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
