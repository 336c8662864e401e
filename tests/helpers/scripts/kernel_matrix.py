"""Every FastDecoder path on the CPU at hand: weights x activations x prefill, forced.

Imported by ``tests/agent/test_kernel_matrix.py`` and run as a script by it under each instruction-set
variant torch can be told to use here (``ATEN_CPU_CAPABILITY=default|avx2|avx512``), so an
AVX512 machine checks the AVX2 kernels too and the other way round where it can::

    ATEN_CPU_CAPABILITY=avx2 python tests/helpers/scripts/kernel_matrix.py MODEL_DIR CACHE_DIR

prints one line per checked path and ``matrix ok ISA`` at the end (exit 1 on a failure, and
a crash in native code is the process dying, which the caller reports).

While it runs, the two quantized kernels are wrapped in :func:`checked_kernels`, which
refuses what their AVX512 variants would read out of bounds or with misaligned loads, so a
violation is an assertion here, not a segmentation fault that depends on the allocator.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

WEIGHTS = ("fp32", "bf16", "int8", "int4")
ACTIVATIONS = ("fp32", "bf16")
PREFILLS = ("fp32", "int8")
# (hidden, intermediate): the usual multiples of 64, and widths that are not multiples of
# 16 (the int8 kernel pads them) nor of 32 (int4 stores those matrices as int8)
SHAPES = {"even": (64, 128), "odd": (40, 72)}
VOCAB = 256


@contextlib.contextmanager
def checked_kernels() -> Iterator[list[str]]:
    """Wrap ``torch._weight_int8pack_mm`` and ``torch._weight_int4pack_mm_for_cpu`` with the
    requirements their AVX512 variants have (see ``agent.models.fastquant``); yields the
    list of calls seen (kernel names). Decoders built inside bind the wrapped ops."""
    seen: list[str] = []
    int8, int4 = torch._weight_int8pack_mm, torch._weight_int4pack_mm_for_cpu

    def check(name: str, x: torch.Tensor, w: torch.Tensor) -> None:
        seen.append(name)
        assert x.dim() == 2 and x.is_contiguous(), f"{name}: activations {tuple(x.shape)} not contiguous rows"
        assert x.data_ptr() % 32 == 0, f"{name}: activations start {x.data_ptr() % 64} bytes past a 64-byte line"
        assert w.data_ptr() % 16 == 0, f"{name}: weight starts {w.data_ptr() % 64} bytes past a 64-byte line"
        if name == "int8":
            assert x.shape[1] % 16 == 0, f"int8: {x.shape[1]} inputs, not a multiple of 16"

    def checked_int8(x: torch.Tensor, mat2: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        check("int8", x, mat2)
        return int8(x, mat2, scales)

    def checked_int4(x: torch.Tensor, mat2: torch.Tensor, qGroupSize: int, qScaleAndZeros: torch.Tensor) -> torch.Tensor:
        check("int4", x, mat2)
        return int4(x, mat2, qGroupSize, qScaleAndZeros)

    torch._weight_int8pack_mm, torch._weight_int4pack_mm_for_cpu = checked_int8, checked_int4
    try:
        yield seen
    finally:
        torch._weight_int8pack_mm, torch._weight_int4pack_mm_for_cpu = int8, int4


def tiny_model(folder: Path, shape: str = "even"):
    """A tiny random Llama saved to ``folder`` and loaded back (so caches key it), its
    weights on a 4-bit grid so that int4 is close to fp32 and comparisons stay tight."""
    import transformers as tf

    hidden, inter = SHAPES[shape]
    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        config = tf.LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                bos_token_id=1, eos_token_id=2, pad_token_id=0)
        model = tf.LlamaForCausalLM(config).eval()
        with torch.no_grad():
            model.lm_head.weight.mul_(8.0)  # clear greedy choices
        model.save_pretrained(folder)
    return tf.LlamaForCausalLM.from_pretrained(folder).eval()


def prompt(n: int, seed: int = 0) -> list[int]:
    return torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def reference(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


# how far each weights mode may drift from fp32 HF (max |error| / max |logit|) on random weights
DRIFT = {"fp32": 1e-3, "bf16": 0.05, "int8": 0.05, "int4": 0.25}


def check_path(model, weights: str, activations: str, prefill: str, cache_dir: Path | bool) -> str:
    """Build a decoder forced to one path, then: prefill logits (long prompt: the GEMM path;
    short: the kernels) and every decode step close to HF; a greedy run; a superseded and
    an abandoned generator; a second decoder of the same model in the same process (from
    the cache). Returns a one-line summary; raises AssertionError on a failure."""
    from agent.errors import ModelError
    from agent.models.fastpath import FastDecoder
    from agent.options import GenerationOptions

    calibration = prompt(48, seed=9) if prefill == "int8" else None
    # threads=None: torch's own count on every step (with "auto" a step may take one thread
    # or two, which may round a bf16 sum differently and flip a near-tie between runs)
    decoder = FastDecoder(model, weights=weights, activations=activations, prefill=prefill,
                          calibration_ids=calibration, cache_dir=cache_dir, threads=None)
    assert decoder.activations == activations and decoder.prefill == prefill
    bound = DRIFT[weights] + (0.05 if prefill == "int8" else 0.0) + (0.03 if activations == "bf16" else 0.0)
    ids = prompt(40, seed=1)
    ref = reference(model, ids)
    scale = float(ref.abs().max())
    for n in (40, 8):  # 40 rows: dense / int8 GEMMs; 8 rows: the decode kernels on all rows
        got = decoder.logits(ids[:n])
        err = float((got - ref[:n]).abs().max()) / scale
        assert err < bound, f"{weights}/{activations}/{prefill}: prefill of {n} off by {err:.3f}"
    decoder.logits(ids[:4])
    with torch.inference_mode():
        steps = torch.stack([decoder._decode(ids[p], p) for p in range(4, len(ids))])
    err = float((steps - ref[4:]).abs().max()) / scale
    assert err < bound + 0.05, f"{weights}/{activations}/{prefill}: decode steps off by {err:.3f}"

    greedy = GenerationOptions(temperature=0, repetition_penalty=1.0, max_new_tokens=12)
    decoder.reset()  # from an empty KV cache, like the twin below
    first = list(decoder.generate(ids[:36], greedy, eos_token_ids=()))
    assert len(first) == 12
    # another decoder of the same model in this process (packed again or read from the
    # cache) answers the same from an empty KV cache
    twin = FastDecoder(model, weights=weights, activations=activations, prefill=prefill,
                       calibration_ids=calibration, cache_dir=cache_dir, threads=None)
    assert list(twin.generate(ids[:36], greedy, eos_token_ids=())) == first, "a second decoder answers otherwise"
    # superseded: a second generate takes the KV cache, the first then fails clearly
    stale = decoder.generate(ids[:36], greedy, eos_token_ids=())
    next(stale)
    list(decoder.generate(ids[:30], greedy, eos_token_ids=()))
    try:
        next(stale)
        raise AssertionError("a superseded generator went on")
    except ModelError:
        pass
    # abandoned half-way; then a prompt that shares a prefix with what the cache holds. The
    # reused prefix was computed by other products (GEMM rows vs kernel rows), so compare
    # the next-token logits against a fresh decoder's within the drift bound, not bitwise.
    dropped = decoder.generate(ids[:20] + first[:4], greedy, eos_token_ids=())
    next(dropped)
    del dropped
    gc.collect()
    twin.reset()
    with torch.inference_mode():
        reused, fresh = decoder._start(ids[:36], 12), twin._start(ids[:36], 12)
    err = max(err, float((reused - fresh).abs().max()) / scale)
    assert err < bound + 0.05, f"{weights}/{activations}/{prefill}: logits after reuse off by {err:.3f}"
    return f"{weights:5} act={activations:4} prefill={prefill:4} ok (decode drift {err:.3f})"


def paths() -> list[tuple[str, str, str]]:
    return [(w, a, p) for w in WEIGHTS for a in ACTIVATIONS for p in PREFILLS]


def main(argv: list[str]) -> int:
    from agent.models.fastquant import kernel_isa

    folder, cache = Path(argv[0]), Path(argv[1])
    shapes = argv[2].split(",") if len(argv) > 2 else list(SHAPES)
    with checked_kernels() as seen:
        for shape in shapes:
            model = tiny_model(folder / shape, shape)
            for weights, activations, prefill in paths():
                print(shape, check_path(model, weights, activations, prefill, cache / shape), flush=True)
    assert {"int8", "int4"} <= set(seen), "the quantized kernels were not reached"
    print("matrix ok", kernel_isa(), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root
    sys.exit(main(sys.argv[1:]))
