"""Index files against SQLite: atomic saves, a manifest checked on load, rebuilds when they disagree."""

from __future__ import annotations

import json
import logging

import pytest

from memory import FakeEmbedder, MemoryStore
from memory.persist import read_manifest
from memory.records import namespace_for

ANN = namespace_for("ann")


def _index_ids(store: MemoryStore, ns: str = ANN) -> set[int]:
    ids, _ = store.indexes.get(ns).snapshot()
    return set(ids.tolist())


def _db_ids(store: MemoryStore, ns: str = ANN) -> set[int]:
    return set(store.db.ids_in(ns))


def _saved(open_store, n: int = 10, **config) -> tuple[MemoryStore, list[int]]:
    store = open_store(**config)
    ids = store.add_many([f"memory number {i} about topic {i % 3}" for i in range(n)], user_id="ann")
    store.close()
    return store, ids


def test_save_writes_a_manifest_that_describes_the_index(open_store) -> None:
    store, ids = _saved(open_store)
    manifest = read_manifest(store.indexes.folder / f"{ANN}.json")
    assert manifest is not None
    assert (manifest.count, manifest.max_row_id, manifest.model, manifest.dim, manifest.kind) == (
        10, max(ids), "fake", 64, "flat")
    assert manifest.size == (store.indexes.folder / f"{ANN}.faiss").stat().st_size
    assert not list(store.indexes.folder.glob(".*.tmp"))  # temp files renamed away


def test_a_clean_restart_loads_without_rebuilding(open_store) -> None:
    _saved(open_store)
    store = open_store()
    assert _index_ids(store) == _db_ids(store)
    assert store.indexes.rebuilds == []


def test_rows_committed_after_the_last_save_are_caught_up(open_store) -> None:
    store = open_store(index_save_every=1000)
    store.add_many(["first batch a", "first batch b"], user_id="ann")
    store.flush()
    late = store.add("added after the save", user_id="ann")
    store.indexes._indexes.clear()  # a crash: the in-memory index is lost unsaved
    assert late in _index_ids(store)
    assert store.indexes.rebuilds == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_manifest", "manifest_count", "manifest_json"])
def test_a_damaged_index_or_manifest_is_rebuilt_from_sqlite(open_store, caplog, damage: str) -> None:
    store, ids = _saved(open_store)
    index_path = store.indexes.folder / f"{ANN}.faiss"
    manifest_path = store.indexes.folder / f"{ANN}.json"
    if damage == "truncate":
        index_path.write_bytes(index_path.read_bytes()[:100])
    elif damage == "garbage":
        data = bytearray(index_path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_path.write_bytes(bytes(data))
    elif damage == "no_manifest":
        manifest_path.unlink()
    elif damage == "manifest_count":
        doc = json.loads(manifest_path.read_text())
        doc["count"] += 1
        manifest_path.write_text(json.dumps(doc))
    else:
        manifest_path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="memory.catalog"):
        reopened = open_store()
        hits = reopened.search("memory number 4 about topic 1", k=3, user_id="ann")
    assert hits[0].id == ids[4]
    assert _index_ids(reopened) == _db_ids(reopened) == set(ids)
    assert len(reopened.indexes.rebuilds) == 1
    assert "rebuilding the vector index" in caplog.text


def test_a_manifest_that_disagrees_with_sqlite_forces_a_rebuild(open_store) -> None:
    store, ids = _saved(open_store)
    # rows deleted behind the index's back (another process, a crash before the save)
    store2 = open_store()
    with store2.db.write() as conn:
        store2.db.delete_ids(conn, ids[:3])
    store2.indexes._indexes.clear()
    assert _index_ids(store2) == set(ids[3:])
    assert "disagrees with SQLite" in store2.indexes.rebuilds[0][1]


def test_a_changed_embedding_model_rebuilds_with_the_new_one(open_store, caplog) -> None:
    _, ids = _saved(open_store)
    new_model = FakeEmbedder(dim=32, name="fake-v2")
    with caplog.at_level(logging.WARNING):
        store = open_store(emb=new_model)
        hits = store.search("memory number 7 about topic 1", k=1, user_id="ann")
    assert hits[0].id == ids[7]
    assert "embedding model changed" in caplog.text
    assert "embedding model changed" in store.indexes.rebuilds[0][1]
    manifest = read_manifest(store.indexes.folder / f"{ANN}.json")
    assert manifest is not None and (manifest.model, manifest.dim) == ("fake-v2", 32)


def test_hnsw_past_the_threshold_with_deletes_survives_restarts(open_store) -> None:
    store = open_store(hnsw_threshold=32, index_save_every=5)
    ids = store.add_many([f"fact {i} about item{i}" for i in range(60)], user_id="ann")
    assert store.indexes.get(ANN).kind == "hnsw"
    store.delete(ids[:5])
    assert not {h.id for h in store.search("fact about item1", k=60, user_id="ann")} & set(ids[:5])
    store.close()
    reopened = open_store(hnsw_threshold=32, index_save_every=5)
    index = reopened.indexes.get(ANN)
    assert index.kind == "hnsw" and reopened.indexes.rebuilds == []
    assert _index_ids(reopened) == _db_ids(reopened) == set(ids[5:])
    assert reopened.search("fact 42 about item42", k=1, user_id="ann")[0].id == ids[42]


def test_another_process_writes_are_picked_up(open_store, tmp_path) -> None:
    mine = open_store()
    gone = mine.add("mine first", user_id="ann")
    assert mine.search("mine first", user_id="ann")
    theirs = open_store()
    new = theirs.add("written by the other process", user_id="ann")
    theirs.delete([gone])
    hits = mine.search("written by the other process", k=5, user_id="ann")
    assert [h.id for h in hits] == [new]
    assert _index_ids(mine) == {new}
