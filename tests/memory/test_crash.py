"""A writer killed with SIGKILL at random points loses nothing it committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory import FakeEmbedder, MemoryConfig, MemoryStore
from memory.records import namespace_for

WRITER = Path(__file__).resolve().parents[1] / "helpers" / "scripts" / "crash_writer.py"  # run as a script by path
ROOT = Path(__file__).resolve().parents[2]


def _run_until_killed(folder: Path, start: int, rng: random.Random) -> dict[int, str]:
    """Start a writer, let it commit a random number of memories, SIGKILL it mid-stride."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(WRITER), str(folder), str(start)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    committed: dict[int, str] = {}
    target = rng.randint(5, 60)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(committed) < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            _, row, text = line.rstrip("\n").split(" ", 2)
            committed[int(row)] = text
        time.sleep(rng.random() * 0.02)  # land somewhere inside the next add or save
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    for line in out.splitlines():  # lines printed before the kill: committed too
        if line.startswith("ok "):
            _, row, text = line.split(" ", 2)
            committed[int(row)] = text
    assert committed, f"the writer committed nothing: {err[-2000:]}"
    return committed


def test_sigkilled_writer_loses_no_committed_memory(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("LLMOS_CRASH_SEED", "7")))
    folder = tmp_path / "memory"
    committed: dict[int, str] = {}
    for round_number in range(6):
        committed.update(_run_until_killed(folder, start=round_number * 1000, rng=rng))

    store = MemoryStore(folder, FakeEmbedder(), MemoryConfig(index_save_every=3, hnsw_threshold=120))
    try:
        ns = namespace_for("crash")
        in_db = set(store.db.ids_in(ns))
        assert set(committed) <= in_db  # every committed memory is there
        index = store.indexes.get(ns)
        ids, _ = index.snapshot()
        assert set(ids.tolist()) == in_db  # and the index agrees with SQLite
        for row in rng.sample(sorted(committed), min(40, len(committed))):
            hits = store.search(committed[row], k=3, user_id="crash")
            assert row in [h.id for h in hits], committed[row]
    finally:
        store.close()


@pytest.mark.parametrize("cut", [0.3, 0.9])
def test_kill_during_save_leaves_old_or_new_index_never_a_mix(tmp_path: Path, cut: float) -> None:
    """A half-written temp file (what a kill during a save leaves) is never loaded."""
    folder = tmp_path / "memory"
    store = MemoryStore(folder, FakeEmbedder(), MemoryConfig())
    ids = store.add_many([f"memo {i}" for i in range(20)], user_id="crash")
    store.close()
    index_file = folder / "index" / f"{namespace_for('crash')}.faiss"
    data = index_file.read_bytes()
    (index_file.parent / f".{index_file.name}.999.tmp").write_bytes(data[: int(len(data) * cut)])
    reopened = MemoryStore(folder, FakeEmbedder(), MemoryConfig())
    try:
        assert reopened.search("memo 13", k=1, user_id="crash")[0].id == ids[13]
        assert reopened.indexes.rebuilds == []
    finally:
        reopened.close()
