"""Every fast-decoder path on every instruction-set variant this CPU can run.

The matrix (weights fp32 / bf16 / int8 / int4 x activations fp32 / bf16 x prefill fp32 /
int8, on even and odd widths, with supersede / abandon / a second decoder in the same
process) lives in ``tests/helpers/scripts/kernel_matrix.py``. It runs here in this process
(torch's own choice of kernels), and in a subprocess under each ``ATEN_CPU_CAPABILITY``
variant the CPU supports, so an AVX512 machine also checks the AVX2 and plain kernels. The
packed-weight cache is shared between those runs on purpose: a packing for one variant must
never serve another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.helpers.scripts import kernel_matrix  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(kernel_matrix.__file__).resolve()  # also run as a script by path


def cpu_variants() -> list[str]:
    """The ATEN_CPU_CAPABILITY values this CPU can run: default always, avx2 and avx512
    when /proc/cpuinfo lists what torch's variants need."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    variants = ["default"]
    if {"avx2", "fma"} <= flags:
        variants.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        variants.append("avx512")
    return variants


def _run(env_extra: dict[str, str], *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, str(SCRIPT), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One model folder and one packed-weight cache for every variant's run."""
    return tmp_path_factory.mktemp("kernel-matrix")


@pytest.mark.slow
@pytest.mark.parametrize("weights", kernel_matrix.WEIGHTS)
@pytest.mark.parametrize("shape", list(kernel_matrix.SHAPES))
def test_every_path_in_process(shared, shape, weights):
    model = kernel_matrix.tiny_model(shared / "models" / shape, shape)
    with kernel_matrix.checked_kernels() as seen:
        for activations in kernel_matrix.ACTIVATIONS:
            for prefill in kernel_matrix.PREFILLS:
                kernel_matrix.check_path(model, weights, activations, prefill, shared / "cache" / shape)
    if weights in ("int8", "int4"):
        assert seen, "the quantized kernels were not reached"


@pytest.mark.slow
@pytest.mark.parametrize("variant", cpu_variants())
def test_every_path_under_each_instruction_set(shared, variant):
    result = _run({"ATEN_CPU_CAPABILITY": variant}, str(shared / "models"), str(shared / "cache"))
    assert result.returncode == 0, f"{variant}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert f"matrix ok {variant.upper()}" in result.stdout


# A packing made under one variant, written with a key that claims another (as a cache from
# before the key had the variant, or a copied image, would): loading it must catch it.
_FORGE = """
import sys, logging
logging.basicConfig(level=logging.WARNING)
sys.path.insert(0, {root!r})
import torch
import agent.models.fastpath as fastpath
from tests.helpers.scripts import kernel_matrix
fastpath.kernel_isa = lambda: "FORGED"
model = kernel_matrix.tiny_model(__import__("pathlib").Path(sys.argv[1]), "even")
ids = kernel_matrix.prompt(12, seed=4)
cached = fastpath.FastDecoder(model, weights="int4", prefill="fp32", cache_dir=__import__("pathlib").Path(sys.argv[2]))
fresh = fastpath.FastDecoder(model, weights="int4", prefill="fp32", cache_dir=False)
with torch.inference_mode():
    a, b = cached._start(ids, 4), fresh._start(ids, 4)
err = float((a - b).abs().max() / b.abs().max())
print("relative error", err)
sys.exit(0 if err < 1e-3 else 1)
"""


@pytest.mark.slow
@pytest.mark.skipif(len(cpu_variants()) < 2, reason="one instruction-set variant only")
def test_a_cache_packed_for_another_instruction_set_is_caught_on_load(tmp_path):
    first, second = cpu_variants()[-1], cpu_variants()[0]
    code = _FORGE.format(root=str(ROOT))
    args = (str(tmp_path / "model"), str(tmp_path / "cache"))
    wrote = _run({"ATEN_CPU_CAPABILITY": first}, *args, code=code)
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert "does not match its weights" not in wrote.stderr
    read = _run({"ATEN_CPU_CAPABILITY": second}, *args, code=code)
    assert read.returncode == 0, read.stdout + read.stderr  # answers like a fresh packing
    assert "does not match its weights" in read.stderr  # because the foreign packing was refused


def test_auto_choices_fall_back_with_a_log_line_and_bench_reports_them(shared, tiny_model_dir, monkeypatch, caplog):
    import agent.models.fastpath as fastpath
    from agent import load_model
    from agent.errors import ModelError
    from agent.models.device import cpu_flags
    from agent.models.fastquant import kernel_isa
    from agent.toolbox.bench import _kernel_choices

    model = kernel_matrix.tiny_model(shared / "models" / "even", "even")
    monkeypatch.setattr(fastpath, "_int4_kernel_available", lambda: False)
    with caplog.at_level("WARNING"):
        decoder = fastpath.FastDecoder(model, weights="int4", cache_dir=False)
    assert decoder.weights == "int8" and "no int4 CPU kernel" in caplog.text
    with pytest.raises(ModelError, match="activations"):
        fastpath.FastDecoder(model, activations="fp16", cache_dir=False)
    monkeypatch.undo()

    lm = load_model(str(tiny_model_dir("llama")), device="cpu")
    choices = _kernel_choices(lm)
    assert lm.fast is not None  # a Llama on the CPU decodes through the FastDecoder: its choices are reported
    assert choices == {"cpu_flags": cpu_flags(), "kernel_isa": kernel_isa(), "weights": lm.fast.weights,
                       "act_dtype": lm.fast.activations, "prefill": lm.fast.prefill}
    assert choices["weights"] in ("int8", "int4", "bf16", "fp32") and choices["act_dtype"] in ("bf16", "fp32")
    assert choices["prefill"] in ("int8", "fp32")
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    assert set(choices["cpu_flags"]) <= flags and ("avx2" in choices["cpu_flags"]) == ("avx2" in flags)
