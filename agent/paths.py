"""Where llmos keeps its files: user data (conversations, memories) and caches (converted weights).

Base layer: imports nothing of ours, so every layer may ask where its files go.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data_dir", "default_cache_dir"]


def default_data_dir() -> Path:
    """Where conversations and memories live unless the config says otherwise (``LLMOS_DATA_DIR`` overrides)."""
    env = os.environ.get("LLMOS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("llmos", appauthor=False))


def default_cache_dir() -> Path:
    """Where converted model weights are cached (``LLMOS_CACHE_DIR`` overrides)."""
    env = os.environ.get("LLMOS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmos", appauthor=False))
