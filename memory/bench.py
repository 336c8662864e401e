"""Memory benchmarks: search latency at 100k memories, add_many throughput, HNSW at 1M.

``bench_memory()`` is what ``llmos bench --memory`` reports; ``bench_hnsw()`` (slow: it
builds a 1M-vector graph) runs with ``python -m memory.bench --hnsw``. The figures are
medians: the machines are shared and noisy.

The 100k store is filled with synthetic sentences and their hashed bag-of-words vectors
at the real embedder's dimension (embedding 100k texts would take the benchmark's whole
budget); the search path measured is the dialogue manager's: the turn's vector is given,
the lexical search runs, hits are fetched from SQLite. ``add_many`` is measured with the
real embedder end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.models.embedder import Embedder, FakeEmbedder
from memory.config import MemoryConfig
from memory.store import MemoryStore

__all__ = ["bench_memory", "bench_search", "bench_add_many", "bench_hnsw", "synthetic_texts"]

_SUBJECTS = "I my sister my boss our team the dentist my neighbour grandma the kids my friend Sam".split(" ")
_VERBS = ("visited", "painted", "booked", "cancelled", "recommended", "cooked", "fixed", "lost", "found",
          "ordered", "planned", "finished", "started", "loved", "hated", "bought", "sold", "tried")
_OBJECTS = ("a pottery class", "the red bicycle", "tickets to Lisbon", "a vegan lasagne", "the quarterly report",
            "a new laptop", "the garden shed", "a jazz concert", "a marathon", "the blue sofa", "a puppy",
            "a book about volcanoes", "the piano lessons", "a trip to Kyoto", "the wedding cake", "a tent")
_WHEN = ("yesterday", "last week", "on Friday", "in March", "this morning", "two years ago", "in 2019",
         "after work", "before the holidays", "on my birthday")


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct short memory-like sentences."""
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_WHEN)} "
            f"(note {i}, code {rng.randint(1000, 99999)})" for i in range(n)]


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3)}


def bench_search(n: int = 100_000, *, queries: int = 300, k: int = 5, config: MemoryConfig | None = None,
                 folder: Path | None = None) -> dict[str, Any]:
    """Search latency in one user's store of ``n`` memories (the worst case: one namespace)."""
    cfg = config or MemoryConfig()
    embedder = FakeEmbedder(dim=384, name="bench-hashed-384")
    texts = synthetic_texts(n)
    with tempfile.TemporaryDirectory(prefix="llmos-bench-", dir=folder) as tmp:
        store = MemoryStore(tmp, embedder, cfg)
        started = time.perf_counter()
        for start in range(0, n, 5000):
            part = texts[start:start + 5000]
            store.add_many(part, user_id="bench", vectors=embedder.encode(part))
        fill_s = time.perf_counter() - started
        store.add("a decoy memory of someone else", user_id="other")
        rng = random.Random(1)
        asked = [f"what did {rng.choice(_SUBJECTS)} do with {rng.choice(_OBJECTS)}?" for _ in range(queries)]
        vectors = embedder.encode(asked)
        for q, v in zip(asked[:20], vectors[:20], strict=True):  # warm: index load, page cache
            store.search(q, k=k, user_id="bench", vector=v)
        hybrid, dense, cpu = [], [], []
        for q, v in zip(asked, vectors, strict=True):
            t, c = time.perf_counter(), time.process_time()
            store.search(q, k=k, user_id="bench", vector=v)
            hybrid.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        dense_store = MemoryStore(tmp, embedder, cfg.model_copy(update={"hybrid": False}))
        for q, v in zip(asked, vectors, strict=True):
            t = time.perf_counter()
            dense_store.search(q, k=k, user_id="bench", vector=v)
            dense.append(time.perf_counter() - t)
        kind = store.indexes.get(store.indexes.loaded()[0]).kind
        dense_store.close()
        store.close()
    return {"memories": n, "index": kind, "fill_s": round(fill_s, 1),
            "search": _ms(hybrid), "search_cpu": _ms(cpu), "search_dense_only": _ms(dense)}


def bench_add_many(n: int = 1000, *, embedder: Embedder | None = None, repeats: int = 3) -> dict[str, Any]:
    """Texts per second through ``add_many`` (embedding included), median of ``repeats``."""
    if embedder is None:
        from agent.models.embedder import SentenceEmbedder

        embedder = SentenceEmbedder()
    embedder.encode(["warm up the model"])
    rates = []
    for r in range(repeats):
        texts = synthetic_texts(n, seed=100 + r)
        with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp, MemoryStore(tmp, embedder) as store:
            t = time.perf_counter()
            store.add_many(texts, user_id="bench")
            rates.append(n / (time.perf_counter() - t))
    return {"texts": n, "embedder": embedder.name, "texts_per_s": round(statistics.median(rates), 1),
            "runs": [round(r, 1) for r in rates], "torch_threads": _torch_threads(),
            "load_average": round(os.getloadavg()[0], 2)}


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def clustered_vectors(n: int, dim: int, *, centers: int = 2000, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters, like sentence embeddings (topics), not uniform noise."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * (spread / np.sqrt(dim))
        out[start:stop] = middle[rng.integers(0, centers, stop - start)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def bench_hnsw(n: int = 1_000_000, *, dim: int = 384, queries: int = 500, config: MemoryConfig | None = None,
               ef_values: tuple[int, ...] = (64, 96, 128, 256), data: str = "clustered") -> dict[str, Any]:
    """Build the store's HNSW index over ``n`` vectors; recall@10 against exact search."""
    import faiss

    from memory.vector_index import IndexParams, VectorIndex, omp_threads

    cfg = config or MemoryConfig()
    params = IndexParams(dim=dim, hnsw_threshold=1, hnsw_m=cfg.hnsw_m,
                         hnsw_ef_construction=cfg.hnsw_ef_construction, hnsw_ef_search=cfg.hnsw_ef_search)
    if data == "clustered":
        base = clustered_vectors(n + queries, dim)
    else:
        base = np.random.default_rng(0).standard_normal((n + queries, dim)).astype(np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
    vectors, asked = base[:n], base[n:]
    t = time.perf_counter()
    index = VectorIndex.build(params, np.arange(n, dtype=np.int64), vectors)
    build_s = time.perf_counter() - t
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    with omp_threads(2):
        _, truth = exact.search(asked, 10)
    result: dict[str, Any] = {"vectors": n, "dim": dim, "data": data, "M": cfg.hnsw_m,
                              "ef_construction": cfg.hnsw_ef_construction, "build_s": round(build_s, 1),
                              "by_ef_search": {}}
    for ef in ef_values:
        index.params = IndexParams(**{**params.__dict__, "hnsw_ef_search": ef})
        found, times = [], []
        for q in asked:
            t = time.perf_counter()
            hits = index.search(q, 10)
            times.append(time.perf_counter() - t)
            found.append([i for i, _ in hits])
        recall = float(np.mean([len(set(f) & set(tr.tolist())) / 10 for f, tr in zip(found, truth, strict=True)]))
        result["by_ef_search"][ef] = {"recall@10": round(recall, 4), **_ms(times)}
    return result


def bench_memory(n: int = 100_000, *, add_texts: int = 1000, embedder: Embedder | None = None,
                 search: bool = True, int8: bool = False) -> dict[str, Any]:
    """The figures ``llmos bench --memory`` reports: search at ``n`` memories, add_many rate
    (``int8``: also with the embedder's linear layers in int8)."""
    out: dict[str, Any] = {"search": bench_search(n)} if search else {}
    out["add_many"] = bench_add_many(add_texts, embedder=embedder)
    if int8:
        from agent.models.embedder import SentenceEmbedder

        out["add_many_int8"] = bench_add_many(add_texts, embedder=SentenceEmbedder(int8=True))
    return out


def _table(results: dict[str, Any]) -> str:
    lines = []
    if "search" in results:
        s = results["search"]
        lines.append(f"search at {s['memories']:,} memories ({s['index']}): hybrid p50 {s['search']['p50_ms']} ms "
                     f"(p95 {s['search']['p95_ms']}; CPU time p50 {s['search_cpu']['p50_ms']} ms), "
                     f"dense only p50 {s['search_dense_only']['p50_ms']} ms")
    for key in ("add_many", "add_many_int8"):
        if key in results:
            a = results[key]
            lines.append(f"add_many ({a['embedder']}): {a['texts_per_s']} texts/s (runs {a['runs']}; "
                         f"{a['torch_threads']} torch threads, load average {a['load_average']})")
    if "hnsw" in results:
        h = results["hnsw"]
        lines.append(f"HNSW over {h['vectors']:,} {h['data']} vectors (M={h['M']}, efC={h['ef_construction']}): "
                     f"built in {h['build_s']} s")
        for ef, row in h["by_ef_search"].items():
            lines.append(f"  efSearch {ef:>4}: recall@10 {row['recall@10']:.4f}, p50 {row['p50_ms']} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m memory.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000, help="store size for the search latency")
    parser.add_argument("--add-texts", type=int, default=1000, help="texts per add_many run")
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW over --hnsw-vectors (slow)")
    parser.add_argument("--hnsw-vectors", type=int, default=1_000_000)
    parser.add_argument("--hnsw-data", choices=("clustered", "uniform"), default="clustered")
    parser.add_argument("--skip-store", action="store_true", help="only the HNSW benchmark")
    parser.add_argument("--skip-search", action="store_true", help="no search latency (add_many only)")
    parser.add_argument("--int8", action="store_true", help="also time add_many with the int8 embedder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if not args.skip_store:
        results.update(bench_memory(args.memories, add_texts=args.add_texts, search=not args.skip_search,
                                    int8=args.int8))
    if args.hnsw:
        results["hnsw"] = bench_hnsw(args.hnsw_vectors, data=args.hnsw_data)
    print(json.dumps(results, indent=1) if args.json else _table(results))


if __name__ == "__main__":
    main()
