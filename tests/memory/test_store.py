"""The store's API: add, add_many, search, delete, list; embeddings reused, never repeated."""

from __future__ import annotations

import numpy as np
import pytest

from agent.errors import InputError, MemoryStoreError
from agent.turn import MemoryBackend
from memory import Hit, MemoryItem, MemoryStore
from tests.helpers.embedders import CountingEmbedder


def test_satisfies_the_dialogue_managers_protocol(store: MemoryStore) -> None:
    assert isinstance(store, MemoryBackend)


def test_add_then_search_finds_it_with_provenance(store: MemoryStore, embedder: CountingEmbedder) -> None:
    cat = store.add("I adopted a cat called Miso", user_id="ann", session_id="s1")
    row = store.add("My sister lives in Lisbon", user_id="ann", session_id="s2", kind="fact", source="chat")
    hits = store.search("where does my sister live", k=3, user_id="ann")
    assert hits and isinstance(hits[0], Hit)
    top = hits[0]
    assert (top.id, top.text, top.kind, top.source, top.user_id, top.session_id) == (
        row, "My sister lives in Lisbon", "fact", "chat", "ann", "s2")
    assert 0.0 < top.score <= 1.0 and [h.id for h in hits] == [row, cat]
    # the dense similarity is the cosine of the two texts' embeddings; only the text that shares
    # words with the query ("my", "sister") has a BM25 score
    query, text = embedder.encode(["where does my sister live", "My sister lives in Lisbon"])
    assert top.similarity == pytest.approx(float(query @ text), abs=1e-5)
    assert top.bm25 > 0 and hits[1].bm25 is None
    assert top.created_at > 0 and top.updated_at >= top.created_at


def test_lexical_search_finds_rare_words_and_numbers(store: MemoryStore) -> None:
    store.add_many([f"note number {i} about the weather" for i in range(40)] + ["my locker code is 7319"],
                   user_id="ann")
    assert store.search("7319", k=1, user_id="ann")[0].text == "my locker code is 7319"


def test_add_many_embeds_in_one_batch(store: MemoryStore, embedder) -> None:
    ids = store.add_many(["one", "two", MemoryItem("three", kind="fact")], user_id="ann")
    assert len(ids) == 3 and len(set(ids)) == 3
    assert embedder.batches == [["one", "two", "three"]]
    assert [r.kind for r in store.get(ids, user_id="ann")] == ["turn", "turn", "fact"]


def test_identical_text_is_not_embedded_twice(store: MemoryStore, embedder) -> None:
    first = store.add("I like green tea", user_id="ann")
    again = store.add("I like green tea", user_id="ann")
    other_user = store.add("I like green tea", user_id="bob")
    store.add_many(["I like green tea", "I like green tea", "new text"], user_id="cy")
    assert again == first and other_user != first
    assert embedder.texts.count("I like green tea") == 1
    assert store.count("ann") == 1 and store.count("cy") == 2


def test_given_vector_is_used_instead_of_embedding(store: MemoryStore, embedder) -> None:
    vector = embedder.encode(["the turn as the understand stage embedded it"])[0]
    embedder.batches.clear()
    store.add("the turn as the understand stage embedded it", user_id="ann", vector=vector)
    hits = store.search("the turn as the understand stage embedded it", user_id="ann", vector=vector)
    assert embedder.batches == []
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_kinds_filter(store: MemoryStore) -> None:
    store.add("the printer is on floor two", user_id="ann", kind="fact")
    store.add("the printer jammed again", user_id="ann", kind="turn")
    assert {h.kind for h in store.search("printer", k=5, user_id="ann", kinds=["fact"])} == {"fact"}
    with pytest.raises(InputError, match="unknown memory kind"):
        store.search("printer", user_id="ann", kinds=["diary"])


def test_delete_removes_from_search_and_listing(store: MemoryStore) -> None:
    keep = store.add("keep this memory about apples", user_id="ann")
    drop = store.add("drop this memory about apples", user_id="ann")
    assert store.delete([drop], user_id="bob") == 0  # not bob's to delete
    assert store.delete([drop], user_id="ann") == 1
    assert [h.id for h in store.search("memory about apples", k=5, user_id="ann")] == [keep]
    assert [r.id for r in store.list_memories("ann")] == [keep]


def test_list_is_newest_first_and_scoped(store: MemoryStore) -> None:
    a = store.add("first", user_id="ann")
    b = store.add("second", user_id="ann")
    store.add("bob's", user_id="bob")
    assert [r.id for r in store.list("ann")] == [b, a]
    assert store.list("ann", limit=1)[0].score == 0.0


def test_bad_input_is_rejected_with_a_hint(store: MemoryStore) -> None:
    with pytest.raises(InputError, match="empty"):
        store.add("   ", user_id="ann")
    with pytest.raises(InputError, match="user_id"):
        store.add("hello", user_id=None)  # would otherwise land in everyone's knowledge base
    with pytest.raises(InputError, match="kind"):
        store.add("hello", user_id="ann", kind="diary")
    with pytest.raises(InputError, match="empty query"):
        store.search("  ", user_id="ann")
    assert store.search("anything", k=0, user_id="ann") == []


def test_a_closed_store_says_so(store: MemoryStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(MemoryStoreError, match="closed"):
        store.search("x", user_id="ann")


def test_wrong_sized_vectors_are_ignored_not_trusted(store: MemoryStore, embedder) -> None:
    store.add("a text", user_id="ann", vector=np.ones(7, dtype=np.float32))
    assert embedder.texts == ["a text"]
    hits = store.search("a text", user_id="ann", vector=np.ones(3))
    assert hits[0].text == "a text"


def test_recency_weight_prefers_the_newer_memory(open_store) -> None:
    store = open_store(recency_weight=2.0, hybrid=False)
    store.add("my favourite colour is blue", user_id="ann", created_at=1.0)
    newer = store.add("my favourite colour is green", user_id="ann")
    assert store.search("favourite colour", k=2, user_id="ann")[0].id == newer


def test_min_similarity_drops_unrelated_memories(open_store) -> None:
    store = open_store(min_similarity=0.3, hybrid=False)
    store.add("bananas are yellow", user_id="ann")
    assert store.search("quantum chromodynamics lecture", user_id="ann") == []


def test_memories_said_by_the_person_the_query_names_come_first(open_store) -> None:
    store = open_store(speaker_weight=0.7, hybrid=False)
    ben = store.add("Pixel adopted greyhound", user_id="grp", meta={"speaker": "Ben"})
    ana = store.add("Pixel adopted greyhound yesterday evening", user_id="grp", meta={"speaker": "Ana"})
    query = "greyhound Pixel adopted"
    assert [h.id for h in store.search(query, k=2, user_id="grp")][0] == ben  # closer words: Ben's is first
    assert [h.id for h in store.search(f"what did ana's {query}", k=2, user_id="grp")][0] == ana
    assert all(0.0 < h.score <= 1.0 for h in store.search(f"Ana {query}", k=2, user_id="grp"))
    off = open_store(speaker_weight=0.0, hybrid=False)
    assert [h.id for h in off.search(f"what did ana's {query}", k=2, user_id="grp")][0] == ben


def test_int8_embedding_refuses_a_gpu() -> None:
    from memory import SentenceEmbedder

    with pytest.raises(MemoryStoreError, match="CPU only"):
        SentenceEmbedder(int8=True, device="cuda")
