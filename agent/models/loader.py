"""``load_model``: a model by preset name, local directory, ``.gguf`` file or Hugging Face id.

Nothing is downloaded: Hugging Face ids resolve only against the local cache
(``HF_HUB_OFFLINE=1`` is set for the call), and a missing model is an error that says
how to get the weights onto the machine.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Any

from agent.errors import ModelError
from agent.models.adapters import adapter_base, is_adapter_dir, merge_adapter, merged_target
from agent.models.config import ModelConfig
from agent.models.device import Placement, resolve_placement
from agent.models.embedded import Progress, ensure_converted
from agent.models.model import LanguageModel
from agent.models.presets import DEFAULT_MODEL, find_preset

__all__ = ["load_model", "load_configured", "resolve_source", "resolve_adapter_dir"]

log = logging.getLogger(__name__)


def resolve_adapter_dir(path: str | Path, cache_dir: Path | None = None) -> Path | None:
    """A transformers directory with the LoRA adapter at ``path`` merged into its base model.

    None when ``path`` is not an adapter directory (so a caller can fall through to its usual
    resolution). The base is resolved like any model name (a preset, a directory, a .gguf file or
    a cached Hugging Face id); the merge is cached, so only the first load pays for it.
    """
    folder = Path(path).expanduser()
    if not is_adapter_dir(folder):
        return None
    target = merged_target(folder, cache_dir)
    if not (target / "config.json").is_file():
        merge_adapter(folder, resolve_source(adapter_base(folder), cache_dir=cache_dir), target)
    return target


def resolve_source(name_or_path: str, *, cache_dir: Path | None = None, progress: Progress | None = None) -> str:
    """Map a preset name, GGUF file, directory or HF id to something ``from_pretrained`` reads."""
    preset = find_preset(name_or_path)
    if preset is not None:
        if preset.source.startswith("embedded:"):
            return str(ensure_converted(cache_dir=cache_dir, progress=progress))
        if preset.source.startswith("packaged:"):
            from agent.models.packaged import PACKAGED, ensure_packaged

            return str(ensure_packaged(PACKAGED[preset.source.partition(":")[2]], cache_dir=cache_dir,
                                       progress=progress))
        return preset.source
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file {path} does not exist: check the path")
        return str(ensure_converted(path, cache_dir=cache_dir, progress=progress))
    if path.exists():
        # a LoRA adapter directory (from `llmos train lm --adapter-only`): merged onto its base
        if (merged := resolve_adapter_dir(path, cache_dir=cache_dir)) is not None:
            return str(merged)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model directory (no config.json): point at a saved transformers model")
        return str(path)
    if name_or_path.count("/") == 1 and not name_or_path.startswith(("/", ".", "~")):
        return name_or_path  # a Hugging Face id, looked up in the local cache only
    raise ModelError(
        f"unknown model {name_or_path!r}: use a preset from `llmos models`, a local model directory, "
        "a .gguf file or a Hugging Face id (org/name) whose weights are in the local cache"
    )


def load_model(name_or_path: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto",
               quantization: str | None = None, fast: bool | str = "auto", cache_dir: Path | None = None,
               progress: Progress | None = None, lean: bool = True, prefill: str = "auto") -> LanguageModel:
    """Load a language model ready to generate.

    ``device`` is ``auto``/``cpu``/``cuda[:N]``; ``dtype`` is ``auto``/``float32``/``bfloat16``/
    ``float16``; ``quantization`` is ``int8`` (CPU, weight-only) or ``8bit``/``4bit``
    (bitsandbytes, GPU only). ``fast`` picks the lean CPU decoder for Llama-family models
    (``auto``: when supported). ``progress(fraction, message)`` reports a first-time
    conversion of a GGUF file.

    A local Llama/Qwen2/Mistral folder bound for the fast decoder is read without
    transformers (``lean``, :mod:`agent.models.checkpoint`): its modeling code costs ~4 s of
    imports. The transformers model is then loaded on first use of ``LanguageModel.model``.
    ``lean=False`` loads through transformers from the start. ``prefill`` is the fast
    decoder's prompt arithmetic: ``auto``, ``int8`` or ``fp32`` (see
    :class:`~agent.models.fastpath.FastDecoder`).
    """
    placement = resolve_placement(device, dtype, quantization)
    report = progress or (lambda _f, _m: None)
    source = resolve_source(name_or_path, cache_dir=cache_dir, progress=progress)
    report(0.95, f"loading {name_or_path}")
    started = time.perf_counter()
    if lean and fast is not False and (reason := _lean_reason(source, placement)) is None:
        lm = _load_lean(source, placement, name_or_path, dtype, prefill)
        log.info("loaded %s (lean, %s) in %.2fs", name_or_path, lm.fast.weights, time.perf_counter() - started)
        report(1.0, "ready")
        return lm
    if lean and fast is not False:
        log.debug("%s loads through transformers: %s", name_or_path, reason)
    model, tokenizer = _from_pretrained(source, placement, name_or_path)
    decoder = _fast_decoder(model, placement, fast, explicit_dtype=dtype != "auto", prefill=prefill,
                            tokenizer=tokenizer)
    log.info("loaded %s (%s, %s) in %.2fs", name_or_path, placement.device, placement.dtype, time.perf_counter() - started)
    report(1.0, "ready")
    return LanguageModel(model, tokenizer, name=name_or_path, device=placement.device,
                         quantization=quantization, fast=decoder)


def _from_pretrained(source: str, placement: Placement, name: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    local_only = {"local_files_only": True}
    try:
        config = AutoConfig.from_pretrained(source, **local_only)
        tokenizer = AutoTokenizer.from_pretrained(source, **local_only)
    except OSError as exc:
        raise ModelError(
            f"model {name!r} ({source}) is not on this machine: fetch it once with `llmos pull {name}` "
            f"(nothing downloads at run time), or copy its weights to a local directory and pass the path. "
            f"({exc.__class__.__name__})"
        ) from None
    auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    kwargs: dict[str, Any] = {"dtype": placement.dtype, **local_only}
    if placement.quantization in ("8bit", "4bit"):
        kwargs["quantization_config"] = _bitsandbytes(placement)
        kwargs["device_map"] = placement.device
    try:
        model = auto.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {name!r} from {source}: {exc}") from exc
    if placement.quantization not in ("8bit", "4bit"):
        model = model.to(placement.device)  # type: ignore[arg-type]  # transformers' stubs for .to() take a model
    model.eval()
    return model, tokenizer


def _lean_reason(source: str, placement: Placement) -> str | None:
    """Why ``source`` cannot load lean (None: it can)."""
    from agent.models.checkpoint import lean_reason
    from agent.models.tokenizer import lean_tokenizer_reason

    if placement.device != "cpu" or placement.quantization not in (None, "int8"):
        return f"device {placement.device}, quantization {placement.quantization}"
    if not Path(source).is_dir():
        return "not a local folder"
    return lean_reason(source) or lean_tokenizer_reason(source)


def _load_lean(source: str, placement: Placement, name: str, dtype: str, prefill: str) -> LanguageModel:
    import functools

    from agent.models.checkpoint import Checkpoint
    from agent.models.fastpath import FastDecoder
    from agent.models.tokenizer import LeanTokenizer

    checkpoint = Checkpoint(source, placement.dtype)
    tokenizer = LeanTokenizer(source)
    decoder = FastDecoder(checkpoint, weights=_fast_weights(placement, explicit_dtype=dtype != "auto"),
                          prefill=prefill, calibration_ids=_calibration_ids(tokenizer))
    return LanguageModel(checkpoint, tokenizer, name=name, device=placement.device, quantization=placement.quantization,
                         fast=decoder, hf_loader=functools.partial(_from_pretrained, source, placement, name))


def _bitsandbytes(placement: Placement) -> Any:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("8bit/4bit quantization needs bitsandbytes: pip install 'llmos[gpu]'")
    import torch
    from transformers import BitsAndBytesConfig

    if placement.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=placement.dtype if placement.dtype != torch.float32 else torch.bfloat16)


def _calibration_ids(tokenizer: Any) -> list[int]:
    """The int8 prefill's calibration text as the model will see text: in its chat format."""
    from agent.models.prefill8 import CALIBRATION_TEXT

    messages = [{"role": "user", "content": CALIBRATION_TEXT}]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(str(text), add_special_tokens=False)["input_ids"])
    except Exception:  # no chat template: the plain text
        return list(tokenizer(CALIBRATION_TEXT)["input_ids"])


def _fast_decoder(model: Any, placement: Placement, fast: bool | str, *, explicit_dtype: bool, prefill: str = "auto",
                  tokenizer: Any = None) -> Any:
    """The lean CPU decoder when it supports this model (else None: transformers generates).

    With ``dtype="auto"`` it uses its recommended weights mode (int8 weight-only on CPUs
    without native bf16: the fastest decode, perplexity within 1% of fp32); an explicit
    dtype or quantization is respected.
    """
    if fast is False or placement.device != "cpu":
        if placement.quantization == "int8" and placement.device == "cpu":
            from agent.models.quantize import quantize_int8

            quantize_int8(model)
        return None
    from agent.models.fastpath import FastDecoder

    if FastDecoder.supports(model):
        return FastDecoder(model, weights=_fast_weights(placement, explicit_dtype=explicit_dtype), prefill=prefill,
                           calibration_ids=_calibration_ids(tokenizer) if tokenizer is not None else None)
    if fast is True:
        raise ModelError(f"the fast CPU decoder does not support {type(model).__name__}: use fast='auto'")
    if placement.quantization == "int8":
        from agent.models.quantize import quantize_int8

        quantize_int8(model)
    return None


def _fast_weights(placement: Placement, *, explicit_dtype: bool) -> str:
    """The fast decoder's weights mode: int8 when asked for, the dtype when one was named,
    else its recommended mode."""
    from agent.models.fastpath import DEFAULT_WEIGHTS

    if placement.quantization == "int8":
        return "int8"
    return _default_fast_weights(placement) if explicit_dtype else DEFAULT_WEIGHTS


def _default_fast_weights(placement: Placement) -> str:
    import torch

    return {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(placement.dtype, "fp32")


def load_configured(config: ModelConfig, *, fast: bool | str = "auto", progress: Progress | None = None) -> LanguageModel:
    """The model an agent config's ``model:`` section names, loaded with its device, dtype,
    quantization and prefill settings (the one place that maps the section onto
    :func:`load_model`)."""
    return load_model(config.name, device=config.device, dtype=config.dtype, quantization=config.quantization,
                      fast=fast, progress=progress, prefill=config.prefill)
