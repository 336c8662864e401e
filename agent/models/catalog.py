"""What ``llmos models`` shows: presets with their local status, pulled models, converted caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.models.presets import PRESETS
from agent.models.pull import format_bytes, is_complete_snapshot
from agent.paths import default_cache_dir

__all__ = ["list_models"]


def _hf_models(cache_dir: str | Path | None) -> dict[str, tuple[str, int | None]]:
    """Models in the Hugging Face cache (``llmos pull``'s or any tool's): repo id -> (status, bytes)."""
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir(cache_dir)
    except Exception:  # no cache yet, or an unreadable one: nothing is pulled
        return {}
    found: dict[str, tuple[str, int | None]] = {}
    for repo in cache.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        # the revision `from_pretrained(repo_id)` reads (refs/main), else the newest
        current = max(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        if not (current.snapshot_path / "config.json").is_file():
            continue  # a tokenizer or some other file cached on its own, not a model
        complete = is_complete_snapshot(current.snapshot_path)
        status = "pulled" if complete else "partial: run llmos pull"
        found[repo.repo_id] = (f"{status}, {format_bytes(repo.size_on_disk)}", repo.size_on_disk)
    return found


def list_models(hf_cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per preset, per other model in the Hugging Face cache and per converted GGUF cache.

    ``hf_cache_dir``: the Hugging Face cache to scan (default: ``HF_HUB_CACHE``).
    """
    from agent.models.embedded import _is_complete, converted_dir, embedded_gguf_path

    rows: list[dict[str, Any]] = []
    pulled = _hf_models(hf_cache_dir)
    for preset in PRESETS.values():
        size: int | None = None
        if preset.source.startswith("embedded:"):
            try:
                gguf = embedded_gguf_path()
                status = "ready (cached)" if _is_complete(converted_dir(gguf)) else "installed (converts once)"
                source = str(gguf)
            except Exception as exc:
                status, source = "missing", str(exc)
        elif preset.source.startswith("packaged:"):
            from agent.models.packaged import PACKAGED, packaged_status

            status, source = packaged_status(PACKAGED[preset.source.partition(":")[2]])
        else:
            status, size = pulled.pop(preset.source, ("not on this machine", None))
            source = preset.source
        rows.append({"name": preset.name, "params": preset.params, "status": status, "source": source,
                     "description": preset.description, "size_bytes": size})
    for repo_id, (status, size) in sorted(pulled.items()):
        rows.append({"name": repo_id, "params": "", "status": status, "source": repo_id,
                     "description": "in the Hugging Face cache", "size_bytes": size})
    models_dir = default_cache_dir() / "models"
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                rows.append({"name": folder.name, "params": "", "status": "converted cache", "source": str(folder),
                             "description": "a converted GGUF checkpoint", "size_bytes": None})
    return rows
