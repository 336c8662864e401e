"""A write policy on LoCoMo: only kept turns are stored, every question still counts its
evidence (so a dropped evidence turn is a miss), and the stored count is reported."""

from __future__ import annotations

from memory import FakeEmbedder
from memory.locomo import evaluate_locomo
from tests.helpers.documents import locomo_sample


def test_dropped_turns_are_not_stored_and_their_evidence_counts_as_missed(tmp_path):
    path = locomo_sample(tmp_path)
    everything = evaluate_locomo(path, embedder=FakeEmbedder(dim=128))
    seen: list[str] = []

    def keep(text: str) -> bool:
        seen.append(text)
        return "cello teacher" not in text  # drops D2:1, the multi-hop evidence

    kept = evaluate_locomo(path, embedder=FakeEmbedder(dim=128), keep=keep)
    assert everything["memories"] == {"conv-x": 5} and kept["memories"] == {"conv-x": 4}
    assert "My cello teacher moved to Oslo." in seen  # the policy sees the words, not the date or speaker
    assert everything["per_category"]["1"]["recall@10"] == 1.0 and kept["per_category"]["1"]["recall@10"] == 0.0
    assert kept["per_category"]["1"]["n"] == everything["per_category"]["1"]["n"] == 1
    assert kept["per_category"]["4"] == everything["per_category"]["4"]
