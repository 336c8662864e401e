"""Loading a LoRA adapter directory as a model: merge it onto its base once, cache the result.

``llmos train lm`` saves a merged model that loads like any other, plus the adapter on
its own (``DIR/adapter``, a few MB). :func:`agent.models.loader.resolve_adapter_dir` lets
``load_model`` accept such an adapter directory too: it resolves the base model named in
``adapter_config.json`` like any model name, then :func:`merge_adapter` applies and merges the
adapter and saves the merged weights into the cache (:func:`merged_target`, keyed by the
adapter's content), so only the first load pays for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from agent.errors import ModelError

__all__ = ["is_adapter_dir", "adapter_base", "merged_target", "merge_adapter"]


def is_adapter_dir(path: str | Path) -> bool:
    """True for a peft adapter directory that is not itself a full model."""
    folder = Path(path).expanduser()
    return (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file()


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.name.startswith("adapter_")):
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def merged_target(folder: Path, cache_dir: Path | None = None) -> Path:
    """Where the adapter at ``folder`` merged onto its base is cached."""
    from agent.paths import default_cache_dir

    # "run/adapter" is what train lm writes: name the cache after the run, not "adapter".
    name = folder.resolve().parent.name if folder.name == "adapter" else folder.resolve().name
    return (cache_dir or default_cache_dir()) / "merged" / f"{name}-{_fingerprint(folder)}"


def adapter_base(folder: Path) -> str:
    """The base model ``adapter_config.json`` names (a preset, a directory, a .gguf file or an HF id)."""
    config = json.loads((folder / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{folder}/adapter_config.json names no base model: set base_model_name_or_path "
                         "to a preset, a model directory or a cached Hugging Face id")
    return str(base)


def merge_adapter(adapter: Path, source: str, target: Path) -> None:
    """Merge the adapter at ``adapter`` onto the base model that ``from_pretrained`` reads at
    ``source`` and save the result at ``target`` (whole or not at all)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_source = str(adapter) if (adapter / "tokenizer_config.json").is_file() else source
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        model.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(tokenizer_source, local_files_only=True).save_pretrained(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except (OSError, ValueError, KeyError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"cannot apply the adapter {adapter} to {source}: {exc}. Check that it was trained "
                         "on this base model") from exc
