"""SQuAD v1.1 for the ``/qa`` skill: exact match and F1 with the official normalisation.

The passages go into a fresh knowledge base and each question runs the skill's own path
(retrieve -> threshold -> select -> answer), in every mode from one model call per
question. Questions of a few held-out articles (whose passages are *not* added) measure
the other half of the contract: saying "I don't know".
"""

from __future__ import annotations

import json
import random
import re
import string
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import InputError
from skills.config import QAConfig
from skills.evals.common import Stopwatch, generate_many, progress
from skills.qa.answer import QA_SYSTEM, _prompt, combine, extractive
from skills.qa.retrieve import retrieve, select_passages
from skills.text import first_line_done, model_parameters

__all__ = ["normalize_answer", "exact_match", "f1_score", "SquadQuestion", "load_squad", "run_squad"]


def normalize_answer(s: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    article: int
    paragraph: int


def load_squad(path: str | Path) -> tuple[list[tuple[str, list[str]]], list[SquadQuestion]]:
    """Articles (title, paragraphs) and every question of a SQuAD v1.1 JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read SQuAD file {path}: {exc}; pass the official dev-v1.1.json") from None
    articles, questions = [], []
    for a, article in enumerate(data):
        articles.append((article["title"], [p["context"] for p in article["paragraphs"]]))
        for p, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                questions.append(SquadQuestion(qa["id"], qa["question"], tuple(x["text"] for x in qa["answers"]), a, p))
    return articles, questions


def _best(metric: Any, prediction: str, answers: Sequence[str]) -> float:
    return max(metric(prediction, a) for a in answers)


def _score(rows: Sequence[tuple[str, Sequence[str]]]) -> dict[str, float]:
    n = max(len(rows), 1)
    return {"exact_match": round(100 * sum(_best(exact_match, p, a) for p, a in rows) / n, 2),
            "f1": round(100 * sum(_best(f1_score, p, a) for p, a in rows) / n, 2)}


def _index(articles: list[tuple[str, list[str]]], keep: set[int], embedder: Any, folder: Path) -> Any:
    from memory import MemoryConfig, MemoryItem, MemoryStore

    store = MemoryStore(folder, embedder, MemoryConfig())
    items = [MemoryItem(text=text, kind="document", source=title, locator=f"paragraph {p + 1}")
             for a, (title, paras) in enumerate(articles) if a in keep for p, text in enumerate(paras)]
    store.add_many(items, user_id=None, shared=True)
    return store


def run_squad(path: str | Path, *, backend: Any, embedder: Any, limit: int | None = 200, config: QAConfig | None = None,
              holdout_articles: int = 6, seed: int = 0, batch_size: int = 1, show_progress: bool = False,
              generate: bool = True) -> dict[str, Any]:
    """Evaluate; returns the figures (EM/F1 per mode, retrieval recall, abstention).
    ``generate=False`` skips the model (extractive figures only: fast, for large samples)."""
    config = config or QAConfig()
    articles, questions = load_squad(path)
    rng = random.Random(seed)
    held = set(rng.sample(range(len(articles)), min(holdout_articles, len(articles) - 1)))
    # With --limit, questions come from enough articles for ~15 per article (all their
    # paragraphs are indexed, so retrieval still has to pick among hundreds of passages).
    pool = [a for a in range(len(articles)) if a not in held]
    rng.shuffle(pool)
    if limit:
        pool = pool[:max(2, -(-limit // 15))]
    answerable = [q for q in questions if q.article in set(pool)]
    unanswerable = [q for q in questions if q.article in held]
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    answerable = answerable[:limit] if limit else answerable
    unanswerable = unanswerable[: max(1, len(answerable) // 4)]
    keep = {q.article for q in answerable}
    retrieval, generation = Stopwatch(), Stopwatch()
    params = model_parameters(backend)
    probe = config.model_copy(update={"min_similarity": -1.0})  # keep everything; threshold applied below
    with tempfile.TemporaryDirectory(prefix="llmos-squad-") as tmp:
        store = _index(articles, keep, embedder, Path(tmp))
        try:
            vectors = embedder.encode([q.question for q in answerable + unanswerable])
            shown_all, wide_all, best_sims, recall1, recallk = [], [], [], 0, 0
            for q, vec in progress(zip(answerable, vectors, strict=False), len(answerable), "retrieving", show_progress):
                with retrieval.measure():
                    found = retrieve(store, q.question, user_id=None, vector=vec, config=probe)
                gold = f"paragraph {q.paragraph + 1}"
                hits = [(p.source, p.citation.endswith(f"({gold})")) for p in found]
                recall1 += bool(hits) and hits[0] == (articles[q.article][0], True)
                recallk += any(h == (articles[q.article][0], True) for h in hits)
                best_sims.append(found[0].similarity if found else -1.0)
                # what the skill would see: the passages over the threshold (all when none is,
                # so the model call is made anyway; such an answer is blanked below)
                usable = [p for p in found if p.similarity >= config.min_similarity] or found
                shown_all.append(select_passages(usable, q.question, params, config, backend.count_tokens))
                wide_all.append(usable[:config.extractive_passages])
            held_sims = []
            for q, vec in zip(unanswerable, vectors[len(answerable):], strict=False):
                found = retrieve(store, q.question, user_id=None, vector=vec, config=probe)
                held_sims.append(found[0].similarity if found else -1.0)
        finally:
            store.close()
    chats = [[{"role": "system", "content": QA_SYSTEM}, {"role": "user", "content": _prompt(q.question, shown)}]
             for q, shown in zip(answerable, shown_all, strict=False)] if generate else []
    generated: list[str] = []
    for k in progress(range(0, len(chats), max(1, batch_size)), -(-len(chats) // max(1, batch_size)),
                      "generating", show_progress):
        batch = chats[k:k + max(1, batch_size)]
        with generation.measure():
            generated += generate_many(backend, batch, max_new_tokens=config.max_answer_tokens, stop=("\n\n",),
                                       batch_size=batch_size, until=first_line_done)
    from skills.qa.answer import _UNKNOWN

    rows: dict[str, list[tuple[str, Sequence[str]]]] = {"extractive": [], "generative": [], "combined": []}
    oracle = []
    t = config.min_similarity
    for q, shown, wide, sim, raw in zip(answerable, shown_all, wide_all, best_sims,
                                        generated or [""] * len(answerable), strict=False):
        gen = re.sub(r"\s*\[\d+\]", "", next((ln.strip() for ln in raw.splitlines() if ln.strip()), ""))
        gen = re.sub(r"^(short )?answer:\s*", "", gen, flags=re.IGNORECASE)
        keep_it = sim >= t
        rows["extractive"].append((extractive(q.question, wide).text if keep_it else "", q.answers))
        rows["generative"].append((gen if keep_it and not _UNKNOWN.search(gen) else "", q.answers))
        rows["combined"].append((combine(q.question, shown, gen).text if keep_it else "", q.answers))
        gold_para = articles[q.article][1][q.paragraph]
        oracle.append((extractive(q.question, [_as_passage(gold_para)]).text, q.answers))
    n = len(answerable)
    examples = [{"question": q.question, "gold": q.answers[0], **{m: rows[m][k][0] for m in rows}}
                for k, q in enumerate(answerable[:5])]
    return {
        "dataset": str(path), "questions": n, "held_out_questions": len(unanswerable),
        "passages_indexed": sum(len(articles[a][1]) for a in keep), "model": getattr(backend, "name", "?"),
        "threshold": t,
        **{mode: _score(r) for mode, r in rows.items() if generate or mode == "extractive"},
        "extractive_on_gold_paragraph": _score(oracle),
        "retrieval": {"recall@1": round(100 * recall1 / max(n, 1), 2), f"recall@{config.k}": round(100 * recallk / max(n, 1), 2)},
        "abstention": {"answerable_answered": round(100 * sum(s >= t for s in best_sims) / max(n, 1), 2),
                       "held_out_abstained": round(100 * sum(s < t for s in held_sims) / max(len(held_sims), 1), 2),
                       "sweep": _sweep(best_sims, held_sims)},
        "timing": {"retrieve_median_ms": retrieval.median_ms(), "generate_median_ms_per_batch": generation.median_ms(),
                   "generate_total_s": generation.total_s(), "batch_size": batch_size},
        "examples": examples if generate else [],
    }


def _as_passage(text: str) -> Any:
    from skills.qa.retrieve import Passage

    return Passage(0, text, "document", None, "gold", 1.0, 1.0)


def _sweep(answerable: list[float], held: list[float]) -> list[dict[str, float]]:
    """Threshold calibration: how many answerable questions keep an answer, and how many
    unanswerable ones abstain, at each threshold."""
    out = []
    for k in range(0, 13):
        t = round(0.05 * k, 2)
        out.append({"threshold": t,
                    "answerable_answered": round(100 * sum(s >= t for s in answerable) / max(len(answerable), 1), 1),
                    "held_out_abstained": round(100 * sum(s < t for s in held) / max(len(held), 1), 1)})
    return out
