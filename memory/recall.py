"""Hybrid recall: how candidates are found, fused and ranked.

1. dense: the nearest vectors in each namespace searched (cosine similarity);
2. lexical: BM25 over the text and its context (see :mod:`memory.lexical`), on a rewrite
   of the query into the words an answer would hold (see :mod:`memory.rewrite`);
3. reciprocal rank fusion of the two rankings (and of recency, if weighted);
4. conversational context: a turn next to a strong match in the same session shares
   some of its score, since an answer often continues the turn that matched the question
   ("What genre is it?" - "A mix of drama and romance!");
5. speakers: where memories record who said them (``meta["speaker"]``, as in a group or
   multi-party conversation), those said by a person the query names gain a share of
   their score ("What did Ana adopt?" is answered by Ana, not by Ben's reply to her);
6. re-ranking: a logistic regression over these signals and a few of each turn's own
   (is it a question, how long, how strong its session is) re-orders the best turns
   (see :mod:`memory.rerank`).

The final fetch from SQLite filters on the caller's namespaces again: whatever the
ranking does, a hit is always the caller's own or the shared knowledge base's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.catalog import IndexCatalog
from memory.config import MemoryConfig
from memory.db import MemoryDB
from memory.fusion import recency_ranking, rrf, rrf_max
from memory.lexical import search_bm25
from memory.records import Hit, MemoryRecord
from memory.rerank import FEATURES, Candidate, features, rerank
from memory.rewrite import rewrite_query

__all__ = ["Recall", "Candidates"]


@dataclass
class Candidates:
    """The candidates of one search: fused scores and the signals behind them."""

    scores: dict[int, float]
    """Row id -> fused score (after neighbours and speakers); higher is better."""
    top: float
    """The best score possible, to scale scores to [0, 1]."""
    dense: list[tuple[int, float]]
    """(row id, cosine similarity), best first."""
    lexical: list[tuple[int, float]]
    """(row id, BM25 score), best first."""
    said: dict[int, str]
    """Who said each of the best candidates, where recorded."""
    named: set[str]
    """The speakers the query names."""


@dataclass
class Recall:
    """The ranking pipeline of a store (its database, indexes and configuration)."""

    db: MemoryDB
    indexes: IndexCatalog
    config: MemoryConfig

    def search(self, query: str, vector: np.ndarray, k: int, namespaces: Sequence[str],
               kinds: tuple[str, ...] | None) -> list[Hit]:
        cfg = self.config
        found = self.candidates(query, vector, k, namespaces, kinds)
        if not found.scores:
            return []
        ranked = sorted(found.scores, key=lambda i: (-found.scores[i], -i))
        depth = cfg.rerank_depth if cfg.rerank else 0
        # full records only for the top (neighbours that joined are checked here too)
        head = ranked[: max(k, depth) + 8]
        records = self.db.fetch(head, namespaces, kinds)
        order = [i for i in head if i in records]
        scores = {i: min(1.0, found.scores[i] / found.top) for i in order}
        if depth:
            order, scores = self.rerank(found, order, records, scores, vector, namespaces, depth)
        sims, bm25 = dict(found.dense), dict(found.lexical)
        return [_hit(records[i], scores[i], sims.get(i), bm25.get(i)) for i in order[:k]]

    def candidates(self, query: str, vector: np.ndarray, k: int, namespaces: Sequence[str],
                   kinds: tuple[str, ...] | None) -> Candidates:
        """Stages 1-5: the fused scores of every candidate, and what produced them."""
        cfg = self.config
        depth = max(cfg.candidates, k)
        dense = self.dense(vector, namespaces, depth * (3 if kinds else 1))
        lexical: list[tuple[int, float]] = []
        if cfg.hybrid and cfg.lexical_weight > 0:
            text = rewrite_query(query) if cfg.query_rewrite else query
            size = sum(self.indexes.get(ns).live for ns in namespaces)
            lexical = search_bm25(self.db.conn(), text, namespaces, kinds, limit=depth, size=size,
                                  max_rows=cfg.lexical_max_rows, context_weight=cfg.context_weight)
        admitted = self.db.admitted(list({i for i, _ in dense} | {i for i, _ in lexical}), namespaces, kinds)
        dense = [(i, s) for i, s in dense if i in admitted][:depth]
        lexical = [(i, s) for i, s in lexical if i in admitted]
        rankings: list[tuple[Sequence[int], float]] = [([i for i, _ in dense], 1.0),
                                                       ([i for i, _ in lexical], cfg.lexical_weight)]
        if cfg.recency_weight > 0:
            rankings.append((recency_ranking(admitted), cfg.recency_weight))
        fused = rrf(rankings, cfg.rrf_k)
        if cfg.neighbor_weight > 0 and fused:
            fused = self.share_with_neighbours(fused, cfg.neighbor_weight, expand=max(4 * k, 20))
        named: set[str] = set()
        said: dict[int, str] = {}
        if cfg.speaker_weight > 0 and fused:
            fused, said, named = self.favour_named_speakers(query, fused, cfg.speaker_weight, top=max(4 * k, 40))
        top = (rrf_max([w for ranked_ids, w in rankings if ranked_ids], cfg.rrf_k) * (1.0 + cfg.neighbor_weight)
               * (1.0 + (cfg.speaker_weight if named else 0.0)))
        return Candidates(fused, top, dense, lexical, said, named)

    def rerank_rows(self, query: str, vector: np.ndarray, k: int, namespaces: Sequence[str],
                    kinds: tuple[str, ...] | None) -> tuple[list[MemoryRecord], np.ndarray]:
        """The turns re-ranking would see for ``query`` (best first by fused score) and
        their features: what ``python -m memory.fit_rerank`` fits the model on."""
        found = self.candidates(query, vector, k, namespaces, kinds)
        head = sorted(found.scores, key=lambda i: (-found.scores[i], -i))[: self.config.rerank_depth + 8]
        records = self.db.fetch(head, namespaces, kinds)
        turns = [i for i in head if i in records and records[i].kind == "turn"][: self.config.rerank_depth]
        if not turns:
            return [], np.zeros((0, len(FEATURES)))
        return [records[i] for i in turns], self.rerank_features(found, turns, records, vector, namespaces)

    def rerank(self, found: Candidates, order: list[int], records: dict[int, MemoryRecord],
               scores: dict[int, float], vector: np.ndarray, namespaces: Sequence[str],
               depth: int) -> tuple[list[int], dict[int, float]]:
        """Stage 6: the learned model re-orders the best ``depth`` turns among the places
        turns hold (documents and facts keep theirs). A turn takes the score of the place
        it lands in, so scores still fall down the list."""
        places = [n for n, i in enumerate(order[:depth]) if records[i].kind == "turn"]
        if len(places) < 2:
            return order, scores
        turns = [order[n] for n in places]
        x = self.rerank_features(found, turns, records, vector, namespaces)
        prob = rerank(x, self.config.rerank_weights)
        out_order = list(order)
        out = dict(scores)
        for n, j in zip(places, np.argsort(-prob, kind="stable"), strict=True):
            out_order[n] = turns[int(j)]
            out[turns[int(j)]] = scores[order[n]]
        return out_order, out

    def rerank_features(self, found: Candidates, ids: Sequence[int], records: dict[int, MemoryRecord],
                        vector: np.ndarray, namespaces: Sequence[str]) -> np.ndarray:
        """The re-ranking features of ``ids`` (best first by fused score), see :mod:`memory.rerank`."""
        sims = dict(found.dense)
        missing = [i for i in ids if i not in sims]
        if missing:
            sims.update(self.similarities(vector, missing, namespaces))
        bm25 = dict(found.lexical)
        return features([Candidate(i, records[i].text, records[i].session_id, found.scores[i] / found.top,
                                   sims.get(i, 0.0), bm25.get(i, 0.0), _speaker(records[i], found.said.get(i)))
                         for i in ids], found.named)

    def similarities(self, vector: np.ndarray, ids: Sequence[int], namespaces: Sequence[str]) -> dict[int, float]:
        """Cosine similarity of ``vector`` to the stored vectors of ``ids`` (those found)."""
        out: dict[int, float] = {}
        for ns in namespaces:
            todo = [i for i in ids if i not in out]
            if not todo:
                break
            for i, vec in self.indexes.get(ns).vectors(todo).items():
                out[i] = float(vec @ vector)
        return out

    def dense(self, vector: np.ndarray, namespaces: Sequence[str], depth: int) -> list[tuple[int, float]]:
        found: list[tuple[int, float]] = []
        for ns in namespaces:
            found += self.indexes.get(ns).search(vector, depth)
        found.sort(key=lambda p: -p[1])
        floor = self.config.min_similarity
        return [p for p in found if p[1] >= floor] if floor > 0 else found

    def share_with_neighbours(self, scores: dict[int, float], weight: float, expand: int) -> dict[int, float]:
        """Each turn gains ``weight`` times its best session neighbour's score; the
        neighbours of the ``expand`` best candidates join the candidates."""
        leaders = sorted(scores, key=lambda i: -scores[i])[:expand]
        near = self.db.neighbours(leaders)  # beyond the leaders a share would not reach the top
        out = dict(scores)
        for row, around in near.items():
            best = max((scores.get(n, 0.0) for n in around), default=0.0)
            out[row] = scores[row] + weight * best
            for n in around:
                if n not in scores:
                    out[n] = max(out.get(n, 0.0), weight * scores[row])
        return out

    def favour_named_speakers(self, query: str, scores: dict[int, float], weight: float,
                              top: int) -> tuple[dict[int, float], dict[int, str], set[str]]:
        """The ``top`` candidates said by someone ``query`` names gain ``weight`` times
        their score (beyond the top a gain would not reach the first hits); also who said
        each of the top, and whom the query names among them."""
        said = self.db.speakers(sorted(scores, key=lambda i: -scores[i])[:top])
        named = {who for who in set(said.values()) if _names(query, who)}
        if not named:
            return scores, said, named
        out = dict(scores)
        for row, who in said.items():
            if who in named:
                out[row] = scores[row] * (1.0 + weight)
        return out, said, named


def _speaker(record: MemoryRecord, said: str | None) -> str | None:
    if said is not None:
        return said
    who = record.meta.get("speaker") if isinstance(record.meta, dict) else None
    return who if isinstance(who, str) and who.strip() else None


def _names(query: str, who: str) -> bool:
    """Whether ``query`` mentions ``who`` as a whole word (any case, possessive too)."""
    return re.search(rf"(?<!\w){re.escape(who)}(?!\w)", query, re.IGNORECASE) is not None


def _hit(record: MemoryRecord, score: float, similarity: float | None, bm25: float | None) -> Hit:
    return Hit(**vars(record), score=score, similarity=similarity, bm25=bm25)
