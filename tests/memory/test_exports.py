"""The memory package's public API is explicit, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import memory


def test_all_names_exist() -> None:
    assert sorted(memory.__all__) == sorted(set(memory.__all__))
    for name in memory.__all__:
        assert hasattr(memory, name), name
    for name in ("MemoryStore", "Hit", "MemoryConfig", "build_store", "ingest_paths", "evaluate_locomo"):
        assert name in memory.__all__


def test_import_does_not_load_torch_or_faiss() -> None:
    code = "import sys, memory; print(any(m in sys.modules for m in ('torch', 'faiss', 'sentence_transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
