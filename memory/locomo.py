"""LoCoMo evidence recall: does the store find the turns that answer a question?

Each conversation's turns are stored as one user's memories (keeping ``dia_id`` and the
session date); for each question of categories 1-4 the store is searched and the share of
the question's evidence turns among the top 5 and top 10 hits is averaged, per category
and overall. Category 5 (adversarial: the answer is not in the conversation) has no
evidence to find and is left out. The dataset is read where it lies; nothing is copied.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import InputError
from agent.models.embedder import Embedder
from memory.config import MemoryConfig
from memory.records import Hit, MemoryItem
from memory.store import MemoryStore

__all__ = ["LocomoVariant", "ABLATION", "load_locomo", "evaluate_locomo", "CachingEmbedder", "CATEGORIES"]

log = logging.getLogger(__name__)

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_EVIDENCE = re.compile(r"D\d+:\d+")


@dataclass(frozen=True)
class LocomoVariant:
    """How turns are stored and searched: each switch is one of the additions measured."""

    name: str = "full"
    hybrid: bool = True
    """Fuse BM25 with the dense search."""
    dates: bool = True
    """Prefix each turn with its session's date."""
    rewrite: bool = True
    """Rewrite questions for the lexical search (see :mod:`memory.rewrite`)."""
    neighbors: bool = True
    """Let a turn share its session neighbours' scores (``neighbor_weight``)."""
    speakers: bool = True
    """Prefix each turn with its speaker's name (questions name people)."""
    captions: bool = True
    """Append the caption of a photo a turn shares."""
    speaker_boost: bool = True
    """Favour turns said by the person a question names (``speaker_weight``)."""
    context_vectors: bool = True
    """Embed each turn together with the turn before it in its session (the question it
    answers, the remark it reacts to); the stored text stays the turn alone."""
    rerank: bool = True
    """Re-order the best turns with the learned model (``memory.rerank``), if configured."""


_OFF = {"hybrid": False, "neighbors": False, "dates": False, "rewrite": False, "speaker_boost": False,
        "context_vectors": False, "rerank": False}
_STEPS = ("hybrid", "neighbors", "dates", "rewrite", "speaker_boost", "context_vectors", "rerank")
_NAMES = {"speaker_boost": "+speakers", "context_vectors": "+context"}

ABLATION = (LocomoVariant("dense", **_OFF),) + tuple(
    LocomoVariant(_NAMES.get(step, f"+{step}"), **{**_OFF, **dict.fromkeys(_STEPS[: n + 1], True)})
    for n, step in enumerate(_STEPS)
)
"""Plain dense search, then each addition on top of the previous one."""


class CachingEmbedder:
    """Wraps an embedder so that texts seen before (in another variant) are not re-embedded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            self._cache.update(zip(todo, self.inner.encode(todo), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._cache[t] for t in texts]).astype(np.float32, copy=False)


def load_locomo(path: str | Path) -> list[dict[str, Any]]:
    """The conversations of a LoCoMo JSON file (a list of samples with ``conversation`` and ``qa``)."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}. Pass the path of locomo10.json or a subset of it") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(s, dict) and "conversation" in s and "qa" in s for s in data):
        raise InputError(f"{path} is not in the LoCoMo format: expected a list of objects with "
                         "'conversation' and 'qa' (as locomo10.json ships)")
    return data


def _parse_date(text: str) -> float | None:
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def _sessions(conversation: dict[str, Any]) -> Iterable[tuple[int, str, list[dict[str, Any]]]]:
    numbers = sorted(int(m.group(1)) for key in conversation if (m := re.fullmatch(r"session_(\d+)", key)))
    for n in numbers:
        turns = conversation.get(f"session_{n}")
        if isinstance(turns, list):
            yield n, str(conversation.get(f"session_{n}_date_time") or ""), turns


def turn_items(sample: dict[str, Any], variant: LocomoVariant) -> list[MemoryItem]:
    """One memory per turn, its ``source`` being the turn's ``dia_id``."""
    return [item for item, _ in _turns(sample, variant)]


def _turns(sample: dict[str, Any], variant: LocomoVariant) -> list[tuple[MemoryItem, str]]:
    """Each turn's memory and the text to embed for it."""
    out: list[tuple[MemoryItem, str]] = []
    for n, date, turns in _sessions(sample["conversation"]):
        when = _parse_date(date)
        previous = ""
        for turn in turns:
            text = str(turn.get("text") or "").strip()
            if variant.captions and turn.get("blip_caption"):
                text += f" [shares a photo: {turn['blip_caption']}]"
            if not text:
                continue
            if variant.speakers and turn.get("speaker"):
                text = f"{turn['speaker']}: {text}"
            line = text
            if variant.dates and date:
                text = f"({date}) {text}"
            embedded = f"{text} | {previous}" if variant.context_vectors and previous else text
            previous = line
            item = MemoryItem(text=text, kind="turn", session_id=f"session_{n}", source=str(turn["dia_id"]),
                              created_at=when,
                              meta={"dia_id": turn["dia_id"], "date": date, "speaker": turn.get("speaker")})
            out.append((item, embedded))
    return out


def _questions(sample: dict[str, Any], known: set[str]) -> list[tuple[dict[str, Any], set[str]]]:
    out = []
    for qa in sample.get("qa", []):
        if qa.get("category") not in CATEGORIES:
            continue
        evidence = {e for item in qa.get("evidence", []) for e in _EVIDENCE.findall(str(item))} & known
        if evidence:
            out.append((qa, evidence))
    return out


def evaluate_locomo(path: str | Path, *, embedder: Embedder, variant: LocomoVariant = LocomoVariant(),
                    config: MemoryConfig | None = None, limit: int | None = None,
                    answer: Callable[[str, list[Hit]], str] | None = None,
                    progress: Callable[[str], None] | None = None,
                    keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Evidence recall@5 and @10 of the store on a LoCoMo file, per category and overall.

    ``limit`` keeps the first N questions of each conversation (quick runs). With
    ``answer(question, hits) -> text`` the answers are generated too and scored with
    LoCoMo's token F1. ``keep(turn_text)`` is a write policy: only the turns it keeps are
    stored, while every question still counts its evidence (a dropped evidence turn is a
    miss); ``memories`` reports what each conversation stored. The store lives in a
    temporary folder.
    """
    from memory.answer_f1 import token_f1

    samples = load_locomo(path)
    base = config or MemoryConfig()
    cfg = base.model_copy(update={"hybrid": variant.hybrid, "query_rewrite": variant.rewrite, "min_similarity": 0.0,
                                  "neighbor_weight": base.neighbor_weight if variant.neighbors else 0.0,
                                  "speaker_weight": base.speaker_weight if variant.speaker_boost else 0.0,
                                  "rerank": base.rerank and variant.rerank})
    per_cat: dict[int, list[tuple[float, float, float | None]]] = {c: [] for c in CATEGORIES}
    per_conv: dict[str, list[tuple[float, float, float | None]]] = {}
    per_conv_cat: dict[str, dict[int, list[tuple[float, float, float | None]]]] = {}
    stored: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="llmos-locomo-") as tmp, MemoryStore(tmp, embedder, cfg) as store:
        for sample in samples:
            user = str(sample.get("sample_id") or f"conv-{samples.index(sample)}")
            every_turn = _turns(sample, variant)
            known = {str(item.source) for item, _ in every_turn}
            turns = [t for t in every_turn if keep is None or keep(_said(t[0]))]
            items = [item for item, _ in turns]
            vectors = embedder.encode([embedded for _, embedded in turns]) if variant.context_vectors else None
            if items:
                store.add_many(items, user_id=user, vectors=vectors)
            stored[user] = len(items)
            questions = _questions(sample, known)[: limit or None]
            vectors = embedder.encode([str(qa["question"]) for qa, _ in questions])
            for (qa, evidence), vec in zip(questions, vectors, strict=True):
                hits = store.search(str(qa["question"]), k=10, user_id=user, vector=vec)
                found = [h.source for h in hits]
                r5 = len(evidence & set(found[:5])) / len(evidence)
                r10 = len(evidence & set(found[:10])) / len(evidence)
                f1 = (token_f1(answer(str(qa["question"]), hits), str(qa["answer"]), multi_hop=qa["category"] == 1)
                      if answer else None)
                per_cat[int(qa["category"])].append((r5, r10, f1))
                per_conv.setdefault(user, []).append((r5, r10, f1))
                per_conv_cat.setdefault(user, {c: [] for c in CATEGORIES})[int(qa["category"])].append((r5, r10, f1))
            if progress:
                progress(f"{variant.name}: {user} done ({len(items)} turns, {len(questions)} questions)")
    result = _summary(per_cat, per_conv, variant, len(samples), answer is not None, per_conv_cat)
    result["memories"] = stored
    return result


def _said(item: MemoryItem) -> str:
    """The words of a turn as its speaker said them (no date or speaker prefix)."""
    speaker = (item.meta or {}).get("speaker")
    text = re.sub(r"^\([^)]*\) ", "", item.text)
    return text[len(speaker) + 2:] if speaker and text.startswith(f"{speaker}: ") else text


def _summary(per_cat: dict[int, list[tuple[float, float, float | None]]],
             per_conv: dict[str, list[tuple[float, float, float | None]]], variant: LocomoVariant,
             conversations: int, answered: bool,
             per_conv_cat: dict[str, dict[int, list[tuple[float, float, float | None]]]] | None = None,
             ) -> dict[str, Any]:
    every = [row for rows in per_cat.values() for row in rows]

    def figures(rows: list[tuple[float, float, float | None]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(rows)}
        out["recall@5"] = round(float(np.mean([r[0] for r in rows])), 4) if rows else 0.0
        out["recall@10"] = round(float(np.mean([r[1] for r in rows])), 4) if rows else 0.0
        if answered:
            out["f1"] = round(float(np.mean([r[2] or 0.0 for r in rows])), 4) if rows else 0.0
        return out

    result = figures(every)
    result["per_category"] = {str(c): {"name": CATEGORIES[c], **figures(rows)} for c, rows in per_cat.items()}
    # per conversation too: a held-out split (tune on some conversations, report the rest)
    result["per_conversation"] = {conv: figures(rows) for conv, rows in per_conv.items()}
    # and per conversation and category, to report a split per category
    result["per_conversation_category"] = {
        conv: {str(c): {"name": CATEGORIES[c], **figures(rows)} for c, rows in cats.items() if rows}
        for conv, cats in (per_conv_cat or {}).items()}
    result["conversations"] = conversations
    result["variant"] = asdict(variant)
    return result


def rerank_training_rows(path: str | Path, *, embedder: Embedder, config: MemoryConfig | None = None,
                         conversations: Iterable[str] | None = None,
                         variant: LocomoVariant = LocomoVariant()) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(conversation, re-ranking features, labels) of each question's best candidates, for
    fitting ``memory.rerank`` on the named conversations only (all when ``None``): a label
    is 1 where the candidate is one of the question's evidence turns."""
    wanted = None if conversations is None else set(conversations)
    samples = [s for s in load_locomo(path) if wanted is None or str(s.get("sample_id")) in wanted]
    if wanted is not None and len(samples) != len(wanted):
        raise InputError(f"{path} lacks conversation(s) {sorted(wanted - {str(s.get('sample_id')) for s in samples})}")
    cfg = (config or MemoryConfig()).model_copy(update={"min_similarity": 0.0, "rerank": False})
    out: list[tuple[str, np.ndarray, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="llmos-locomo-") as tmp, MemoryStore(tmp, embedder, cfg) as store:
        for sample in samples:
            user = str(sample.get("sample_id"))
            turns = _turns(sample, variant)
            items = [item for item, _ in turns]
            vectors = embedder.encode([embedded for _, embedded in turns]) if variant.context_vectors else None
            store.add_many(items, user_id=user, vectors=vectors)
            questions = _questions(sample, {str(i.source) for i in items})
            qvecs = embedder.encode([str(qa["question"]) for qa, _ in questions])
            for (qa, evidence), vec in zip(questions, qvecs, strict=True):
                x, sources = store.rerank_features(str(qa["question"]), user_id=user, vector=vec)
                out.append((user, x, np.array([float(s in evidence) for s in sources])))
    return out


def run_ablation(path: str | Path, *, embedder: Embedder, config: MemoryConfig | None = None,
                 limit: int | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plain dense search and each addition in turn (texts shared between variants are
    embedded once)."""
    shared = CachingEmbedder(embedder)
    return {v.name: evaluate_locomo(path, embedder=shared, variant=replace(v), config=config, limit=limit,
                                    progress=progress) for v in ABLATION}
