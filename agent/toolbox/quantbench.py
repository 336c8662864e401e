"""Quantization side by side: speed, memory and perplexity of each way to load a model.

CPU: fp32, bf16, ``int8`` (llmos's weight-only int8, what ``quantization: int8`` loads)
and ``int8-dynamic`` (torch's dynamic quantization of the linear layers: int8 weights
and activations quantized on the fly). GPU, when CUDA is present: bf16, and 8-bit and
4-bit through bitsandbytes when it is installed.

Each option runs in a fresh subprocess so that its peak memory is its own. Decode speed
comes from ``agent.models.timing.measure_generation`` (median over repeats, greedy);
perplexity is on assistant tokens of held-out chitchat conversations (the end of the
corpus, which training runs that take the first N never see).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from agent.models.presets import DEFAULT_MODEL

__all__ = ["bench_quantization", "quant_options", "format_quant_table", "quantize_dynamic_int8"]


def quant_options() -> list[dict[str, Any]]:
    """The options this machine can run."""
    import importlib.util

    import torch

    options: list[dict[str, Any]] = [
        {"option": "fp32", "device": "cpu", "dtype": "float32", "quantization": None},
        {"option": "bf16", "device": "cpu", "dtype": "bfloat16", "quantization": None},
        {"option": "int8", "device": "cpu", "dtype": "auto", "quantization": "int8"},
        {"option": "int8-dynamic", "device": "cpu", "dtype": "float32", "quantization": "int8-dynamic"},
    ]
    if torch.cuda.is_available():
        options.append({"option": "cuda-bf16", "device": "cuda", "dtype": "auto", "quantization": None})
        if importlib.util.find_spec("bitsandbytes") is not None:
            options += [{"option": "cuda-8bit", "device": "cuda", "dtype": "auto", "quantization": "8bit"},
                        {"option": "cuda-4bit", "device": "cuda", "dtype": "auto", "quantization": "4bit"}]
    return options


def quantize_dynamic_int8(lm: Any) -> Any:
    """Apply torch's dynamic int8 quantization to the linear layers of a CPU model, in place."""
    import torch

    with _quiet():
        lm.model = torch.ao.quantization.quantize_dynamic(lm.model, {torch.nn.Linear}, dtype=torch.qint8)
    lm.quantization = "int8-dynamic"
    return lm


class _quiet:
    """torch.ao warns that it is deprecated in favour of torchao; the path still works."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def _load(model: str, option: dict[str, Any], fast: bool | str) -> Any:
    from agent.models.loader import load_model

    quant = option["quantization"]
    lm = load_model(model, device=option["device"], dtype=option["dtype"],
                    quantization=None if quant == "int8-dynamic" else quant, fast=False if quant == "int8-dynamic" else fast)
    return quantize_dynamic_int8(lm) if quant == "int8-dynamic" else lm


def _weights_mb(lm: Any) -> float:
    seen, total = set(), 0
    for tensor in list(lm.model.parameters()) + list(lm.model.buffers()):
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    # Dynamic-quantized linears keep packed int8 weights outside parameters/buffers.
    import torch

    for module in lm.model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            bias = module.bias()
            total += module.weight().int_repr().numel() + (bias.numel() * 4 if bias is not None else 0)
    return round(total / 2**20, 1)


def run_one(model: str, option: dict[str, Any], data: str, limit: int, new_tokens: int,
            repeats: int, threads: int | None = None) -> dict[str, Any]:
    """Measure one option in this process (``bench_quantization`` calls it in a subprocess)."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from agent.models.timing import measure_generation
    from agent.toolbox.eval_lm import evaluate_lm

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row: dict[str, Any] = dict(option)
    started = time.perf_counter()
    try:
        lm = _load(model, option, fast="auto")
    except ImportError:  # the lean CPU decoder is not there: transformers decodes
        lm = _load(model, option, fast=False)
    row["load_s"] = round(time.perf_counter() - started, 2)
    row["decoder"] = "fast" if getattr(lm, "fast", None) is not None else "transformers"
    row.update(measure_generation(lm, prompt_tokens=50, new_tokens=new_tokens, repeats=repeats))
    if getattr(lm, "fast", None) is not None:  # perplexity needs the (equally quantized) transformers forward
        del lm
        lm = _load(model, option, fast=False)
    row["weights_mb"] = _weights_mb(lm)
    ppl = evaluate_lm(data, lm=lm, limit=limit, max_length=256, batch_size=4, generate=False)
    row.update(perplexity=ppl["perplexity"], ppl_tokens=ppl["tokens"])
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    row["model_rss_mb"] = round(row["peak_rss_mb"] - baseline, 1)
    if option["device"] == "cuda":
        row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def _default_data(limit: int) -> str:
    """The last ``limit`` two-speaker chitchat conversations, written once to the cache."""
    from agent.paths import default_cache_dir
    from agent.toolbox.chitchat import chitchat_conversations
    from agent.toolbox.conversations import write_conversations

    path = default_cache_dir() / "toolbox" / f"chitchat-tail-{limit}.jsonl"
    if not path.is_file():
        write_conversations(list(chitchat_conversations())[-limit:], path)
    return str(path)


def bench_quantization(model: str = DEFAULT_MODEL, *, data: str | None = None, limit: int = 40,
                       new_tokens: int = 64, repeats: int = 3, options: list[str] | None = None,
                       threads: int | None = None, timeout_s: float = 900) -> dict[str, Any]:
    """Speed, memory and perplexity of every quantization option this machine has.

    ``options`` picks a subset by name (``fp32``, ``bf16``, ``int8``, ``int8-dynamic``,
    ``cuda-bf16``, ``cuda-8bit``, ``cuda-4bit``). ``threads`` sets torch's CPU threads in
    each run (default: torch's). A failing option gets an ``error`` row.
    """
    data = data or _default_data(limit)
    chosen = [o for o in quant_options() if options is None or o["option"] in options]
    rows = []
    for option in chosen:
        payload = json.dumps({"model": model, "option": option, "data": data, "limit": limit,
                              "new_tokens": new_tokens, "repeats": repeats, "threads": threads})
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        try:
            proc = subprocess.run([sys.executable, "-m", "agent.toolbox.quantbench", payload], capture_output=True,
                                  text=True, timeout=timeout_s, env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            rows.append(json.loads(lines[-1]) if proc.returncode == 0 and lines
                        else {**option, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]})
        except subprocess.TimeoutExpired:
            rows.append({**option, "error": f"timed out after {timeout_s:.0f}s"})
    return {"model": model, "data": data, "conversations": limit, "cpu_threads": threads or _threads(), "rows": rows}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def format_quant_table(result: dict[str, Any]) -> str:
    """One line per option: load time, decode speed, memory and perplexity."""
    head = f"{'option':<13}{'load s':>8}{'decode tok/s':>14}{'weights MB':>12}{'model RSS MB':>14}{'ppl':>9}  decoder"
    lines = [f"quantization: {result['model']} (perplexity on {result['conversations']} conversations)", head]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"{r['option']:<13}error: {r['error']}")
            continue
        lines.append(f"{r['option']:<13}{r['load_s']:>8.2f}{r['decode_tokens_per_s']:>14.1f}{r['weights_mb']:>12.1f}"
                     f"{r['model_rss_mb']:>14.1f}{r['perplexity']:>9.3f}  {r['decoder']}")
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    """``python -m agent.toolbox.quantbench [MODEL] [--json] [--threads=N] [--limit=N]``: the whole table; with a JSON
    argument (what bench_quantization passes), one option."""
    if argv and argv[0].startswith("{"):
        args = json.loads(argv[0])
        row = run_one(args["model"], args["option"], args["data"], args["limit"], args["new_tokens"], args["repeats"],
                      args.get("threads"))
        sys.stdout.write(json.dumps(row) + "\n")
        return 0
    names = [a for a in argv if not a.startswith("--")]
    threads = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--threads=")), None)
    limit = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--limit=")), 40)
    result = bench_quantization(names[0] if names else DEFAULT_MODEL, threads=threads, limit=limit)
    print(json.dumps(result, indent=2) if "--json" in argv else format_quant_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
