"""Forgetting: once a user or a session is forgotten, no route finds its text, not after a
restart, not after a crash in the middle of the deletion, and the database files no longer
hold it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory import FakeEmbedder, MemoryConfig, MemoryStore
from memory.records import namespace_for

ROOT = Path(__file__).resolve().parents[2]
CRASHER = ROOT / "tests" / "helpers" / "scripts" / "forget_crasher.py"  # run as a script by path
CANARY = "zebracanary"  # in ann's session s1 and in one of bob's memories
SECRET = b"annsecret"  # only in ann's session s1


def _store(folder: Path, hnsw: bool) -> MemoryStore:
    return MemoryStore(folder, FakeEmbedder(), MemoryConfig(hnsw_threshold=8 if hnsw else 20_000))


def _fill(store: MemoryStore) -> None:
    for n in range(12):
        store.add(f"{CANARY} annsecret number {n}", user_id="ann", session_id="s1")
    store.add("ann likes green tea", user_id="ann", session_id="s2")
    store.add(f"bob keeps his own {CANARY} note", user_id="bob", session_id="b1")
    store.search(CANARY, k=5, user_id="ann")  # the index is loaded (and saved below)
    store.flush()


def _found_anywhere(store: MemoryStore, user: str) -> list[str]:
    """Every route by which ann's secret could still come back."""
    hits = []
    hits += [h.text for h in store.search(f"{CANARY} annsecret number", k=50, user_id=user)]
    vector = store.embedder.encode([f"{CANARY} annsecret number 3"])[0]
    hits += [h.text for h in store.search("number", k=50, user_id=user, vector=vector)]  # dense
    hits += [h.text for h in store.list_memories(user, limit=1000)]
    fts = store.db.conn().execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'annsecret'").fetchall()
    hits += [f"fts row {r[0]}" for r in fts]
    return [h for h in hits if "annsecret" in h or h.startswith("fts row")]


def _bytes_on_disk(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _index_ids(store: MemoryStore, user: str) -> set[int]:
    index = store.indexes.get(namespace_for(user))
    live, _ = index.snapshot()
    return set(live.tolist()) | set(index.deleted)


@pytest.mark.parametrize("hnsw", [False, True], ids=["flat", "hnsw"])
def test_a_forgotten_session_is_gone_from_every_route_and_file(tmp_path, hnsw):
    folder = tmp_path / "memory"
    store = _store(folder, hnsw)
    _fill(store)
    secret_ids = set(store.db.ids_of_session(namespace_for("ann"), "s1"))
    assert len(_found_anywhere(store, "ann")) > 0 and secret_ids <= _index_ids(store, "ann")
    assert store.forget_session("ann", "s1") == 12
    assert _found_anywhere(store, "ann") == []
    assert not secret_ids & _index_ids(store, "ann")  # not even as HNSW tombstones
    assert [h.text for h in store.list_memories("ann")] == ["ann likes green tea"]
    assert [h.text for h in store.search(CANARY, k=5, user_id="bob")] == [f"bob keeps his own {CANARY} note"]
    store.close()
    assert SECRET not in _bytes_on_disk(folder)
    again = _store(folder, hnsw)  # a restart
    try:
        assert _found_anywhere(again, "ann") == [] and not secret_ids & _index_ids(again, "ann")
    finally:
        again.close()


@pytest.mark.parametrize("hnsw", [False, True], ids=["flat", "hnsw"])
def test_a_forgotten_user_is_gone_from_sqlite_fts_and_every_index(tmp_path, hnsw):
    folder = tmp_path / "memory"
    store = _store(folder, hnsw)
    _fill(store)
    assert store.forget("ann") == 13
    assert _found_anywhere(store, "ann") == [] and store.list_memories("ann") == []
    assert not any(p.name.startswith(namespace_for("ann")) for p in (folder / "index").iterdir())
    store.close()
    assert SECRET not in _bytes_on_disk(folder) and b"green tea" not in _bytes_on_disk(folder)
    again = _store(folder, hnsw)
    try:
        assert _found_anywhere(again, "ann") == [] and again.list_memories("ann") == []
        assert [h.text for h in again.search(CANARY, k=5, user_id="bob")] == [f"bob keeps his own {CANARY} note"]
    finally:
        again.close()


@pytest.mark.parametrize("where,hnsw", [("index", False), ("index", True), ("session", True), ("transaction", False)])
def test_a_crash_during_forgetting_leaves_nothing_findable(tmp_path, where, hnsw):
    folder = tmp_path / "memory"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(CRASHER), str(folder), where, "hnsw" if hnsw else "flat"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -9 and "stored" in proc.stdout, proc.stderr[-2000:]
    store = _store(folder, hnsw)  # the restart after the crash
    try:
        if where == "transaction":  # killed before the commit: nothing was forgotten, and a retry works
            assert len(store.list_memories("ann")) == 13
            store.forget("ann")
        assert _found_anywhere(store, "ann") == []
        assert store.db.meta_get("scrub_pending") is None
        assert [h.text for h in store.search(CANARY, k=5, user_id="bob")] == [f"bob keeps his own {CANARY} note"]
        if where == "session":
            assert [h.text for h in store.list_memories("ann")] == ["ann likes green tea"]
            assert not set(store.db.ids_in(namespace_for("ann"))) - {store.list_memories("ann")[0].id}
    finally:
        store.close()
    assert SECRET not in _bytes_on_disk(folder)
