"""What ``llmos models`` shows: presets with their local status, and converted caches."""

from __future__ import annotations

from typing import Any

from agent.config import default_cache_dir
from agent.models.presets import PRESETS

__all__ = ["list_models"]


def _hf_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an unreadable cache is just "not cached"
        return False


def list_models() -> list[dict[str, Any]]:
    from agent.models.embedded import _is_complete, converted_dir, embedded_gguf_path

    rows: list[dict[str, Any]] = []
    for preset in PRESETS.values():
        if preset.source.startswith("embedded:"):
            try:
                gguf = embedded_gguf_path()
                status = "ready (cached)" if _is_complete(converted_dir(gguf)) else "installed (converts once)"
                source = str(gguf)
            except Exception as exc:
                status, source = "missing", str(exc)
        else:
            status = "cached" if _hf_cached(preset.source) else "not on this machine"
            source = preset.source
        rows.append({"name": preset.name, "params": preset.params, "status": status, "source": source,
                     "description": preset.description})
    models_dir = default_cache_dir() / "models"
    if models_dir.is_dir():
        for folder in sorted(models_dir.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                rows.append({"name": folder.name, "params": "", "status": "converted cache", "source": str(folder),
                             "description": "a converted GGUF checkpoint"})
    return rows
