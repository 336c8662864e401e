"""Isolation: a user's search never returns another user's memories; forget is final."""

from __future__ import annotations

import sqlite3

from memory import MemoryStore
from memory.records import namespace_for


def _fill(store: MemoryStore) -> None:
    store.add_many([f"ann's note {i}: my dog Rex likes the park" for i in range(3)], user_id="ann")
    store.add_many([f"bob's note {i}: my dog Rex likes the park" for i in range(30)], user_id="bob")
    store.add("The office opens at 9 and the park is next door", user_id=None, kind="document", shared=True)


def test_search_never_crosses_users_even_when_k_exceeds_the_users_store(store: MemoryStore) -> None:
    _fill(store)
    hits = store.search("my dog Rex likes the park", k=50, user_id="ann")
    owners = {h.user_id for h in hits}
    assert owners <= {"ann", None}
    assert len([h for h in hits if h.user_id == "ann"]) == 3
    assert any(h.kind == "document" for h in hits)  # the shared knowledge base is everyone's


def test_no_user_means_the_shared_knowledge_base_only(store: MemoryStore) -> None:
    _fill(store)
    hits = store.search("my dog Rex likes the park", k=50, user_id=None)
    assert hits and {h.user_id for h in hits} == {None}


def test_isolation_holds_with_hnsw_indexes(open_store) -> None:
    store = open_store(hnsw_threshold=16)
    _fill(store)
    assert store.indexes.get(namespace_for("bob")).kind == "hnsw"
    for k in (1, 5, 100):
        assert {h.user_id for h in store.search("bob's note 7", k=k, user_id="ann")} <= {"ann", None}


def test_get_and_delete_respect_the_owner(store: MemoryStore) -> None:
    _fill(store)
    bob_ids = [r.id for r in store.list_memories("bob", limit=100)]
    assert store.get(bob_ids, user_id="ann") == []
    assert store.delete(bob_ids, user_id="ann") == 0
    assert store.count("bob") == 30


def test_forget_removes_rows_vectors_and_index_and_stays_gone(open_store, tmp_path) -> None:
    store = open_store()
    _fill(store)
    secret = "ann's passport number is ZX-4471-QQ"
    store.add(secret, user_id="ann")
    store.flush()
    index_file = store.indexes.folder / f"{namespace_for('ann')}.faiss"
    assert index_file.exists()
    assert store.forget("ann") == 4
    assert not index_file.exists()
    assert store.search("passport number ZX-4471-QQ", k=10, user_id="ann") == [
        h for h in store.search("passport number ZX-4471-QQ", k=10, user_id="ann") if h.user_id is None]
    store.close()

    reopened = open_store()
    assert reopened.count("ann") == 0 and reopened.list_memories("ann") == []
    assert all(h.user_id != "ann" for h in reopened.search("my dog Rex", k=100, user_id="ann"))
    assert reopened.count("bob") == 30  # others untouched
    db = sqlite3.connect(reopened.db.path)
    assert db.execute("SELECT count(*) FROM memories WHERE user_id = 'ann'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH '\"ZX\"'").fetchone()[0] == 0
    db.close()
    reopened.close()
    # secure_delete + FTS optimize + WAL truncation: the text is not left in the files
    raw = b"".join(p.read_bytes() for p in (tmp_path / "memory").glob("memory.sqlite3*"))
    assert b"ZX-4471-QQ" not in raw


def test_forget_then_reuse_gives_a_fresh_store_for_that_user(store: MemoryStore) -> None:
    store.add("old life", user_id="ann")
    store.forget("ann")
    store.add("new life", user_id="ann")
    assert [h.text for h in store.search("life", k=5, user_id="ann")] == ["new life"]
