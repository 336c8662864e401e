"""User text never reaches FTS5 as syntax: quotes, operators and punctuation are just words."""

from __future__ import annotations

import pytest

from memory import MemoryStore
from memory.lexical import keywords, match_expression
from memory.records import namespace_for
from memory.rewrite import rewrite_query

NASTY = [
    'what did I say about "the project',
    'he said "hi" and ""',
    "AND", "OR NOT", "NEAR(a b)", "a NOT b", "foo*", "^start", "col:umn", "title : x",
    "(unbalanced", "unbalanced)", "{braces}", "[brackets]", "-minus +plus", "a AND OR b",
    "emoji 🎉 and ünïcödé", "C++ vs C#?!", "'; DROP TABLE memories; --", "\\", "%_%", "\x00null",
    "the of and", "???", "tab\tnewline\n", "x" * 5000, " ".join(f"w{i}" for i in range(200)),
]


@pytest.mark.parametrize("query", NASTY)
def test_odd_queries_never_raise(store: MemoryStore, query: str) -> None:
    store.add('the project "Phoenix" AND its NEAR-term plan: C++ rewrite', user_id="ann")
    hits = store.search(query, k=3, user_id="ann") if query.strip() else []
    assert all(h.user_id == "ann" for h in hits)


def test_quoted_and_operator_words_still_match_as_words(store: MemoryStore) -> None:
    row = store.add("we chose NEAR as the codename", user_id="ann")
    store.add_many([f"filler text {i}" for i in range(30)], user_id="ann")
    assert store.search('"NEAR"', k=1, user_id="ann")[0].id == row


def test_expression_is_scoped_and_quoted() -> None:
    expr = match_expression('say "ciao" NEAR me', [namespace_for("ann")], ["turn"])
    assert expr is not None
    assert '"ciao"' in expr and '"near"' in expr and "tags : (" in expr
    assert match_expression("what is it", [namespace_for("ann")], None) is None  # only common words
    assert match_expression("anything", [], None) is None


def test_keywords_drop_stopwords_and_duplicates() -> None:
    assert keywords("The dog and THE dog's bone") == ["dog", "bone"]


def test_rewrite_keeps_content_words_and_names() -> None:
    assert rewrite_query("What did Caroline research?") == "caroline research"
    assert "year" in rewrite_query("When did Melanie paint a sunrise?")
    assert rewrite_query("pizza toppings") == "pizza toppings"


def test_frequent_words_are_skipped_rare_ones_kept_within_the_row_budget(open_store) -> None:
    from memory.lexical import search_bm25

    store = open_store(lexical_max_rows=50)
    store.add_many([f"common filler line {i}" for i in range(300)], user_id="ann")
    rare = store.add("common words and one zanzibar", user_id="ann")
    ns = [namespace_for("ann")]
    found = search_bm25(store.db.conn(), "common zanzibar", ns, None, limit=10, size=301, max_rows=50,
                        context_weight=0.5)
    assert [row for row, _ in found] == [rare]  # "common" (301 rows) is over budget
    assert search_bm25(store.db.conn(), "common", ns, None, limit=10, size=301, max_rows=50,
                       context_weight=0.5) == []
    assert store.search("common zanzibar", k=1, user_id="ann")[0].id == rare


def test_a_turn_is_found_through_its_session_neighbours(open_store) -> None:
    store = open_store()
    store.add_many([f"unrelated chatter number {i}" for i in range(30)], user_id="ann", session_id="old")
    store.add("What genre is your new screenplay?", user_id="ann", session_id="s1")
    answer = store.add("A mix of drama and romance!", user_id="ann", session_id="s1")
    store.add("Sounds great.", user_id="ann", session_id="s1")
    hits = store.search("screenplay genre", k=3, user_id="ann")
    assert answer in [h.id for h in hits]


def test_a_deleted_turn_leaves_its_neighbours_context(open_store) -> None:
    from memory.lexical import search_bm25

    store = open_store()
    ids = store.add_many(["first turn", "my secret word is marzipan", "third turn"], user_id="ann", session_id="s")
    ns = [namespace_for("ann")]
    assert len(search_bm25(store.db.conn(), "marzipan", ns, None, limit=10, size=3, max_rows=100,
                           context_weight=0.5)) == 3  # the turn and both neighbours (context)
    store.delete([ids[1]])
    assert search_bm25(store.db.conn(), "marzipan", ns, None, limit=10, size=2, max_rows=100,
                       context_weight=0.5) == []
    assert search_bm25(store.db.conn(), "third", ns, None, limit=10, size=2, max_rows=100,
                       context_weight=0.5)[0][0] in ids  # neighbours now see each other
