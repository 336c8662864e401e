"""Crash-safe file writes: a reader (or a crash) sees the old content or the new, never a mix.

Base layer: imports nothing of ours. Every file llmos rewrites in place (index files and
manifests, cached weights, classifier metadata, download refs, the TUI's state) goes
through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | memoryview | str) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8): a temp file in the same folder,
    fsync, rename over ``path``, fsync the folder. The temp name carries the process and thread,
    so concurrent writers never share one; on any error it is removed and the old file stays."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
