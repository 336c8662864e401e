"""Configuration of the memory store (the ``memory:`` section of an agent config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from memory.rerank import DEFAULT_WEIGHTS, FEATURES

__all__ = ["MemoryConfig"]


class MemoryConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Remember what users say and recall it in later turns and sessions."""
    embedder: str = "all-minilm-l6-v2"
    """The sentence embedder: the shipped default, a model folder or a cached HF id
    (``fake``: a deterministic weightless embedder for tests)."""
    k: int = Field(default=5, ge=1, le=100)
    """How many memories to recall per turn (before the token budget)."""
    token_budget: int = Field(default=384, ge=0)
    """Most prompt tokens spent on recalled text per turn."""
    inject_min_similarity: float = Field(default=0.44, ge=-1.0, le=1.0)
    """A recalled memory reaches the chat prompt only when its embedding's cosine similarity
    to the turn is at least this; a turn no memory is about gets none. Calibrated so that at
    most 5% of off-topic turns recall anything (`llmos eval recall-gate`: IFEval prompts
    against LoCoMo conversations). Search scores are fused ranks, relative to the other
    hits, so they cannot say this. -1 turns the gate off."""
    remember: str = Field(default="statements", pattern="^(statements|all)$")
    """Which user turns become long-term memories: `statements` (what users tell about
    themselves and their situation; not questions, nor requests to write, code, explain or
    summarize, nor greetings and thanks) or `all`. Every turn is kept in the conversation
    store either way."""

    # -- retrieval ------------------------------------------------------------------------
    hybrid: bool = True
    """Fuse the dense (FAISS) ranking with a lexical (FTS5 BM25) one, so names, numbers and
    rare words are found as well as paraphrases. Off: dense search only."""
    rrf_k: int = Field(default=10, ge=1)
    """The reciprocal-rank-fusion constant: a hit's score is the sum of 1/(rrf_k + rank)."""
    lexical_weight: float = Field(default=1.2, ge=0.0)
    """Weight of the lexical ranking in the fusion (the dense one weighs 1)."""
    candidates: int = Field(default=50, ge=1, le=1000)
    """How many hits each ranking contributes to the fusion."""
    neighbor_weight: float = Field(default=0.5, ge=0.0)
    """A conversation turn gains this share of its best session neighbour's score (an
    answer often continues the turn that matched the question). 0: off."""
    speaker_weight: float = Field(default=0.7, ge=0.0)
    """A memory said by someone the query names (its ``meta["speaker"]``) gains this share
    of its score: in a multi-party conversation a question about Ana is answered by what Ana
    said. 0: off; memories without a speaker are unaffected."""
    context_weight: float = Field(default=0.5, ge=0.0)
    """Weight, in the lexical search, of a memory's context (its session neighbours, a
    document's name) relative to its own text."""
    lexical_max_rows: int = Field(default=1000, ge=10)
    """Most rows the lexical search scores per query: rarer words are kept first, so
    names, numbers and rare words always count and search stays fast in big stores."""
    recency_weight: float = Field(default=0.0, ge=0.0)
    """Weight of a recency ranking in the fusion (0: how recent a memory is does not matter)."""
    min_similarity: float = Field(default=0.0, ge=-1.0, le=1.0)
    """Dense matches below this cosine similarity are not recalled (0: keep all)."""
    query_rewrite: bool = True
    """Turn a question into the words an answer would contain before the lexical search
    (drops question words; keeps names, numbers and content words)."""
    rerank: bool = True
    """Re-order the best conversation turns with a learned linear model over the signals
    above and a few of each turn's own (see ``memory/rerank.py``). Off: fused order."""
    rerank_depth: int = Field(default=50, ge=2, le=500)
    """How many of the best candidates the re-ranking re-orders."""
    rerank_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    """The re-ranking model: ``bias`` and one weight per feature (``memory.rerank.FEATURES``),
    as ``python -m memory.fit_rerank`` fits them; a feature left out weighs 0."""

    @field_validator("rerank_weights")
    @classmethod
    def _known_features(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(FEATURES) - {"bias"})
        if unknown:
            raise ValueError(f"unknown re-ranking feature(s) {unknown}: use bias and {', '.join(FEATURES)}")
        return weights

    # -- index --------------------------------------------------------------------------
    hnsw_threshold: int = Field(default=20_000, ge=1)
    """A user's (or the knowledge base's) index switches from exact search to HNSW at this size."""
    hnsw_m: int = Field(default=32, ge=4, le=128)
    """HNSW graph degree: higher is more accurate, bigger and slower to build."""
    hnsw_ef_construction: int = Field(default=80, ge=8)
    """HNSW build-time search depth."""
    hnsw_ef_search: int = Field(default=96, ge=8)
    """HNSW query-time search depth (raised to the number of hits asked for)."""
    index_save_every: int = Field(default=256, ge=1)
    """Save an index after this many changes (or a tenth of its size, if larger); rows
    committed after the last save are recovered from SQLite on the next start."""
    embed_batch_size: int | None = Field(default=None, ge=1)
    """Texts per embedding batch (default: 64 on CPU, 256 on GPU)."""
    embedder_int8: bool = False
    """Run the embedder's linear layers in int8 on the CPU: about 1.5x the texts per
    second, at about one point of LoCoMo evidence recall@10 (0.794 instead of 0.805).
    Switching re-embeds the stored memories (the vectors differ)."""
    device: str | None = None
    """Where the embedder runs: ``cpu``, ``cuda``, ... (default: CUDA when present)."""

    # -- knowledge base -----------------------------------------------------------------
    kb_chunk_chars: int = Field(default=800, ge=100)
    """Target length of a knowledge-base passage (characters; cut on sentence boundaries)."""
    kb_overlap_chars: int = Field(default=160, ge=0)
    """How much of the end of a passage is repeated at the start of the next one."""
