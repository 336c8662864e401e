"""The recall gate: how similar a memory must be to the turn before it reaches the prompt.

Memory search ranks by fused ranks (dense + lexical), so its ``score`` is relative: the best
of five unrelated memories still scores near 1, and "hello" recalled five unrelated turns.
What says whether a memory is *about* the turn is the dense cosine similarity of the two
embeddings. This module measures it on data and picks the threshold:

- positives: LoCoMo questions against their evidence turns (categories 1-4; adversarial
  questions have no evidence);
- negatives: LoCoMo questions against turns of their conversation that are not evidence,
  and IFEval prompts as off-topic queries against all those LoCoMo turns (a user with a
  long history who asks for something it has nothing to do with): an IFEval turn's best
  match is a memory it is not about.

The threshold is tuned on the first three LoCoMo conversations and the even half of the
IFEval prompts, and reported on the other two conversations and the odd half. The rule:
the lowest threshold that lets at most 5% of off-topic turns recall anything -- recall of
evidence is then what is left (MiniLM's cosine separates the two only loosely: the median
evidence pair and the median off-topic best match both sit near 0.31).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["calibrate_recall_gate", "format_recall_gate"]


def _unit(vectors: Any) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)


def _locomo_pairs(samples: list[dict[str, Any]], embedder: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of questions with their evidence (positives) and with as many
    random non-evidence turns of the same conversation (negatives)."""
    rng = random.Random(seed)
    pos: list[float] = []
    neg: list[float] = []
    for sample in samples:
        conv = sample["conversation"]
        turns = {t["dia_id"]: t["text"] for key, value in conv.items() if key.startswith("session_")
                 and isinstance(value, list) for t in value if t.get("text")}
        ids = sorted(turns)
        qas = [qa for qa in sample["qa"] if qa.get("category") != 5 and qa.get("evidence")]
        tv = _unit(embedder.encode([turns[i] for i in ids]))
        index = {d: n for n, d in enumerate(ids)}
        qv = _unit(embedder.encode([qa["question"] for qa in qas]))
        for q, qa in zip(qv, qas, strict=True):
            evidence = {e for e in qa["evidence"] if e in index}
            sims = tv @ q
            pos += [float(sims[index[e]]) for e in evidence]
            others = [index[d] for d in ids if d not in evidence]
            neg += [float(sims[i]) for i in rng.sample(others, min(len(evidence) * 3, len(others)))]
    return np.array(pos), np.array(neg)


def _offtopic_best(prompts: list[str], samples: list[dict[str, Any]], embedder: Any) -> np.ndarray:
    """Each prompt's best similarity to any turn of the conversations."""
    turns = [t["text"] for s in samples for key, value in s["conversation"].items()
             if key.startswith("session_") and isinstance(value, list) for t in value if t.get("text")]
    return (_unit(embedder.encode(prompts)) @ _unit(embedder.encode(turns)).T).max(1)


def calibrate_recall_gate(locomo: str | Path, ifeval: str | Path, *, embedder: Any = None, seed: int = 0,
                          max_offtopic: float = 0.05) -> dict[str, Any]:
    """Tune the threshold on the tune parts, report on the held-out parts (module doc)."""
    if embedder is None:
        from agent.config import load_config
        from memory.factory import build_embedder

        embedder = build_embedder(load_config(environ={}).memory)
    samples = json.loads(Path(locomo).read_text(encoding="utf-8"))
    prompts = [json.loads(line)["prompt"] for line in Path(ifeval).read_text(encoding="utf-8").splitlines() if line.strip()]
    parts = {"tune": (samples[:3], prompts[0::2]), "heldout": (samples[3:], prompts[1::2])}
    data = {}
    for name, (convs, texts) in parts.items():
        pos, neg = _locomo_pairs(convs, embedder, seed)
        data[name] = (pos, neg, _offtopic_best(texts, convs, embedder))
    pos, neg, off = data["tune"]
    threshold = float(np.quantile(off, 1.0 - max_offtopic))
    threshold = round(threshold + 0.005, 2)  # a round figure just above the quantile

    def figures(pos: np.ndarray, neg: np.ndarray, off: np.ndarray) -> dict[str, float]:
        return {"evidence_kept": round(float((pos >= threshold).mean()), 4),
                "non_evidence_kept": round(float((neg >= threshold).mean()), 4),
                "offtopic_turns_recalling": round(float((off >= threshold).mean()), 4),
                "evidence_pairs": int(len(pos)), "offtopic_turns": int(len(off))}

    return {"threshold": threshold, "rule": f"at most {max_offtopic:.0%} of off-topic (IFEval) turns recall anything",
            "tune": figures(*data["tune"]), "heldout": figures(*data["heldout"])}


def format_recall_gate(result: dict[str, Any]) -> str:
    lines = [f"recall gate: cosine similarity >= {result['threshold']} ({result['rule']})"]
    for part in ("tune", "heldout"):
        row = result[part]
        lines.append(f"  {part:<8} evidence kept {row['evidence_kept']:.3f}, non-evidence kept "
                     f"{row['non_evidence_kept']:.3f}, off-topic turns recalling {row['offtopic_turns_recalling']:.3f} "
                     f"({row['evidence_pairs']} evidence pairs, {row['offtopic_turns']} off-topic turns)")
    return "\n".join(lines)
