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
   their score ("What did Ana adopt?" is answered by Ana, not by Ben's reply to her).

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
from memory.rewrite import rewrite_query

__all__ = ["Recall"]


@dataclass
class Recall:
    """The ranking pipeline of a store (its database, indexes and configuration)."""

    db: MemoryDB
    indexes: IndexCatalog
    config: MemoryConfig

    def search(self, query: str, vector: np.ndarray, k: int, namespaces: Sequence[str],
               kinds: tuple[str, ...] | None) -> list[Hit]:
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
        favoured = cfg.speaker_weight > 0 and bool(fused)
        if favoured:
            fused, favoured = self.favour_named_speakers(query, fused, cfg.speaker_weight, top=max(4 * k, 40))
        ranked = sorted(fused, key=lambda i: (-fused[i], -i))
        # full records only for the top (neighbours that joined are checked here too)
        records = self.db.fetch(ranked[: k + 8], namespaces, kinds)
        best = [i for i in ranked[: k + 8] if i in records][:k]
        top = (rrf_max([w for ranked_ids, w in rankings if ranked_ids], cfg.rrf_k) * (1.0 + cfg.neighbor_weight)
               * (1.0 + (cfg.speaker_weight if favoured else 0.0)))
        sims, bm25 = dict(dense), dict(lexical)
        return [_hit(records[i], min(1.0, fused[i] / top), sims.get(i), bm25.get(i)) for i in best]

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
                              top: int) -> tuple[dict[int, float], bool]:
        """The ``top`` candidates said by someone ``query`` names gain ``weight`` times
        their score (beyond the top a gain would not reach the first hits); also whether
        any did."""
        said = self.db.speakers(sorted(scores, key=lambda i: -scores[i])[:top])
        named = {who for who in set(said.values()) if _names(query, who)}
        if not named:
            return scores, False
        out = dict(scores)
        for row, who in said.items():
            if who in named:
                out[row] = scores[row] * (1.0 + weight)
        return out, True


def _names(query: str, who: str) -> bool:
    """Whether ``query`` mentions ``who`` as a whole word (any case, possessive too)."""
    return re.search(rf"(?<!\w){re.escape(who)}(?!\w)", query, re.IGNORECASE) is not None


def _hit(record: MemoryRecord, score: float, similarity: float | None, bm25: float | None) -> Hit:
    return Hit(**vars(record), score=score, similarity=similarity, bm25=bm25)
