"""Crash-safe files: atomic writes and the index manifest.

A FAISS index file is written to a temporary file, fsynced and renamed over the old one;
then its manifest is written the same way. The manifest names the index file's checksum,
so a crash between the two renames leaves a manifest that does not match the index, and
the next load rebuilds from SQLite instead of trusting either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Manifest", "read_manifest", "sha256_bytes", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    """What an index file holds, checked against SQLite when it is loaded."""

    namespace: str
    kind: str
    """``flat`` (exact inner product) or ``hnsw``."""
    count: int
    """Live vectors: the index's vectors minus ``deleted``."""
    max_row_id: int
    """Highest SQLite row id in the index: rows above it were committed after the save."""
    model: str
    dim: int
    checksum: str
    """sha256 of the index file."""
    size: int
    """Bytes of the index file (a truncated file is caught before hashing it)."""
    deleted: list[int] = field(default_factory=list)
    """Row ids still in an HNSW graph (which cannot remove vectors) but deleted."""
    version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode("utf-8")


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``, or ``None`` when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != MANIFEST_VERSION:
            return None
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None
