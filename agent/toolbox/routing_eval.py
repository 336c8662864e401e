"""``llmos eval routing``: does each turn reach the part that should answer it?

A routing set built from real public prompts in ``../shared/data`` (nothing written for it):

| source | expected | tune part | held-out part |
|---|---|---|---|
| IFEval prompts (write, create, explain, ...) | chat | even positions | odd positions |
| MBPP task texts | code | task ids 601-974 (MBPP's train split) | 11-510 (its test split) |
| DialogSum dialogues behind a summarize request | summarize | dev file | test file |
| SQuAD v1.1 questions, their article in the knowledge base | qa | first 24 articles | last 24 |
| CLINC150 small talk (greetings, goodbyes, thanks, "are you a bot?") | chat | its val split | its test split |
| CLINC150 out-of-scope requests ("can you dim my screen") | chat | its oos_val split | its oos_test split |

The CLINC150 small-talk items also carry the shipped intents that may read them (``thank_you``
-> ``thanks``, ``are_you_a_bot`` -> ``small_talk``, ...): everyday phrasings written by
crowd workers, not by us, so ``intents`` reports how often the shipped head names them right.

The route is the agent's own (:func:`agent.understand.routing.route_for` on the turn's
intent, then :func:`~agent.understand.routing.skill_accepts`), from the shipped intent head
and the default config. Thresholds are tuned on the tune part; figures are reported on the
held-out part. ``summarize_from_chat`` counts generation requests (IFEval) that went to
the summarizer: the failure users noticed most.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import InputError

__all__ = ["RouteItem", "routing_set", "evaluate_routing", "format_routing", "PARTS", "public_intent_examples",
           "write_public_intents"]

PARTS = ("tune", "heldout")
_SUMMARY_ASKS = ("Summarize this dialogue:\n{d}", "Can you summarize the following conversation?\n\n{d}",
                 "Please give me a short summary of this chat.\n{d}", "{d}\n\nSummarize the conversation above.",
                 "TL;DR of this exchange:\n{d}", "What did they agree on? Summarise it briefly.\n{d}")


@dataclass(frozen=True)
class RouteItem:
    text: str
    expected: str  # "chat" or a skill name
    source: str
    knowledge_base: bool = False
    documents: tuple[str, ...] = ()  # what the knowledge base holds for this item (SQuAD: its article)
    intents: tuple[str, ...] = ()  # the shipped intents that name it right (empty: not scored)


CLINC_INTENTS: dict[str, tuple[str, ...]] = {
    "greeting": ("greeting", "small_talk"),  # CLINC's greetings include "how are you doing"
    "goodbye": ("goodbye",),
    "thank_you": ("thanks",),
    **{name: ("small_talk",) for name in ("are_you_a_bot", "what_is_your_name", "how_old_are_you",
                                          "what_are_your_hobbies", "do_you_have_pets", "where_are_you_from",
                                          "who_made_you", "who_do_you_work_for")},
}
"""CLINC150 intents with a counterpart among the shipped routing intents, and which of ours
read them right."""


def knowledge_base(items: Sequence[RouteItem], embedder: Any, config: Any) -> Any:
    """A temporary memory store holding every item's documents as shared knowledge-base
    passages (one per paragraph), so QA's relevance check runs for real."""
    import tempfile

    from memory import build_store
    from memory.records import MemoryItem

    store = build_store(config.memory, data_dir=tempfile.mkdtemp(prefix="llmos-routing-kb-"), embedder=embedder)
    paragraphs = sorted({d for i in items for d in i.documents})
    store.add_many([MemoryItem(p, source=f"article-{n}") for n, p in enumerate(paragraphs)], user_id=None,
                   kind="document", shared=True)
    return store


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"missing {path}: pass --data-dir pointing at the shared data folder (../shared/data)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _clinc_path(root: Path) -> Path:
    path = root / "clinc150" / "data_full.json"
    if not path.is_file():
        raise InputError(f"missing {path}: pass --data-dir pointing at the shared data folder (../shared/data)")
    return path


def routing_set(data_dir: str | Path, part: str = "heldout", *, per_source: int | None = None,
                seed: int = 0) -> list[RouteItem]:
    """The routing items of ``part`` (``tune`` or ``heldout``); ``per_source`` caps each
    source with a seeded sample."""
    if part not in PARTS:
        raise InputError(f"unknown part {part!r}; use tune or heldout")
    root = Path(data_dir)
    held = part == "heldout"
    items: dict[str, list[RouteItem]] = defaultdict(list)
    ifeval = sorted(_lines(root / "ifeval" / "input_data.jsonl"), key=lambda r: int(r["key"]))
    items["ifeval"] = [RouteItem(r["prompt"], "chat", "ifeval") for i, r in enumerate(ifeval) if i % 2 == int(held)]
    mbpp = _lines(root / "mbpp" / "mbpp.jsonl")
    lo, hi = (11, 510) if held else (601, 974)
    items["mbpp"] = [RouteItem(r["text"], "code", "mbpp") for r in mbpp if lo <= int(r["task_id"]) <= hi]
    dialogs = _lines(root / "dialogsum" / ("dialogsum.test.jsonl" if held else "dialogsum.dev.jsonl"))
    items["dialogsum"] = [RouteItem(_SUMMARY_ASKS[i % len(_SUMMARY_ASKS)].format(d=r["dialogue"]), "summarize",
                                    "dialogsum") for i, r in enumerate(dialogs)]
    squad = json.loads((root / "squad_v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    articles = squad[len(squad) // 2:] if held else squad[: len(squad) // 2]
    rng = random.Random(seed)
    for article in articles:
        paragraphs = tuple(para["context"] for para in article["paragraphs"])
        questions = [qa["question"] for para in article["paragraphs"] for qa in para["qas"]]
        for q in rng.sample(questions, min(6, len(questions))):
            items["squad"].append(RouteItem(q, "qa", "squad", knowledge_base=True, documents=paragraphs))
    clinc = json.loads(_clinc_path(root).read_text(encoding="utf-8"))
    items["clinc"] = [RouteItem(text, "chat", "clinc", intents=CLINC_INTENTS[label])
                      for text, label in clinc["test" if held else "val"] if label in CLINC_INTENTS]
    items["clinc_oos"] = [RouteItem(text, "chat", "clinc_oos") for text, _ in clinc["oos_test" if held else "oos_val"]]
    out: list[RouteItem] = []
    for source in ("ifeval", "mbpp", "dialogsum", "squad", "clinc", "clinc_oos"):
        chosen = items[source]
        if per_source is not None and len(chosen) > per_source:
            chosen = random.Random(seed).sample(chosen, per_source)
        out.extend(chosen)
    return out


def evaluate_routing(items: Sequence[RouteItem], *, config: Any = None, embedder: Any = None,
                     count_tokens: Callable[[str], int] | None = None, skills: dict[str, Any] | None = None,
                     understanding: Any = None) -> dict[str, Any]:
    """Route every item as the agent would and compare with what it should reach."""
    from agent.config import load_config
    from agent.understand.routing import choose_skill

    cfg = config or load_config(environ={})
    if embedder is None:
        from memory.factory import build_embedder

        embedder = build_embedder(cfg.memory)
    if understanding is None:
        from agent.understand import build_understanding

        understanding = build_understanding(cfg.understanding, embedder)
    if skills is None:
        from skills import load_skills

        skills = dict(load_skills(cfg.skills))
    if count_tokens is None:
        count_tokens = _word_pieces
    vectors = embedder.encode([item.text for item in items])
    kb = knowledge_base(items, embedder, cfg) if any(i.knowledge_base for i in items) else None
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    named: dict[str, Counter[str]] = defaultdict(Counter)  # scored intents: "right" / the wrong label
    wrong: list[dict[str, str]] = []
    for item, vector in zip(items, vectors, strict=True):
        understood = understanding.analyze(item.text, vector, [])
        skill = choose_skill(item.text, understood.intent, cfg.understanding, skills,
                             has_knowledge_base=item.knowledge_base, count_tokens=count_tokens,
                             memory=kb if item.knowledge_base else None, user_id=None, vector=vector)
        got = skill or "chat"
        confusion[item.source][got] += 1
        if item.intents:
            label = understood.intent.label if understood.intent else "none"
            named[item.source]["right" if label in item.intents else label] += 1
        if got != item.expected and sum(w["source"] == item.source for w in wrong) < 10:
            label = understood.intent.label if understood.intent else None
            wrong.append({"source": item.source, "got": got, "intent": str(label), "text": item.text[:100]})
    per_source = {}
    correct = 0
    for source, counts in confusion.items():
        expected = next(i.expected for i in items if i.source == source)
        per_source[source] = {"n": sum(counts.values()), "accuracy": round(counts[expected] / sum(counts.values()), 4),
                              "routes": dict(counts.most_common())}
        correct += counts[expected]
    for source, counts in named.items():
        n = sum(counts.values())
        per_source[source]["intent_accuracy"] = round(counts["right"] / n, 4)
        per_source[source]["intent_errors"] = {k: v for k, v in counts.most_common() if k != "right"}
    return {"n": len(items), "accuracy": round(correct / max(1, len(items)), 4), "per_source": per_source,
            "summarize_from_chat": confusion["ifeval"]["summarize"], "wrong": wrong}


def public_intent_examples(data_dir: str | Path, *, per_intent: int = 150, seed: int = 0) -> dict[str, list[str]]:
    """Training examples for the shipped intent head from the *tune* part of the routing set,
    under licences that allow shipping what is trained on them: IFEval prompts (Apache-2.0)
    as ``writing_request``, MBPP's train-split tasks (CC BY 4.0) as ``code_request``, and
    CLINC150's validation-split small talk (CC BY 3.0) as the first of the intents
    :data:`CLINC_INTENTS` maps it to. Whitespace is collapsed (one example a line)."""
    items = routing_set(data_dir, "tune")
    out: dict[str, list[str]] = {}
    for label, source in (("writing_request", "ifeval"), ("code_request", "mbpp")):
        texts = sorted({" ".join(i.text.split()) for i in items if i.source == source})
        out[label] = sorted(random.Random(seed).sample(texts, min(per_intent, len(texts))))
    everyday: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.source == "clinc":
            everyday[item.intents[0]].add(" ".join(item.text.split()))
    for label in sorted(everyday):
        out[label] = sorted(everyday[label])
    return out


def write_public_intents(data_dir: str | Path, path: str | Path, **kwargs: Any) -> int:
    """Write :func:`public_intent_examples` as Rasa NLU YAML (the shipped
    ``agent/understand/data/intents_public.yml``); returns the number of examples."""
    examples = public_intent_examples(data_dir, **kwargs)
    lines = ["# Public prompts added to the shipped routing intents; generated by",
             "#   llmos eval routing --data-dir ../shared/data --write-intents agent/understand/data/intents_public.yml",
             "# writing_request: IFEval prompts (google-research instruction_following_eval, Apache-2.0), the",
             "#   routing set's tune part (even positions by key); code_request: MBPP task texts, task ids",
             "#   601-974 (Austin et al. 2021, CC BY 4.0); greeting, goodbye, thanks, small_talk: CLINC150's",
             "#   validation split of its small-talk intents (Larson et al. 2019, CC BY 3.0). The held-out parts",
             "#   (IFEval odd positions, MBPP 11-510, CLINC150 test) are never trained on.",
             'version: "3.1"', "nlu:"]
    for label, texts in examples.items():
        lines += [f"- intent: {label}", "  examples: |"] + [f"    - {t}" for t in texts]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(t) for t in examples.values())


def _word_pieces(text: str) -> int:
    """A tokenizer-free token estimate (~1.3 tokens a word), for routing without a model."""
    return int(len(text.split()) * 1.3)


def format_routing(result: dict[str, Any]) -> str:
    lines = [f"routing: {result['n']} turns, accuracy {result['accuracy']}, "
             f"generation requests sent to summarize: {result['summarize_from_chat']}"]
    for source, row in result["per_source"].items():
        routes = ", ".join(f"{k} {v}" for k, v in row["routes"].items())
        intents = f"; intents {row['intent_accuracy']}" if "intent_accuracy" in row else ""
        lines.append(f"  {source:<10} n={row['n']:<4} accuracy {row['accuracy']:<7} ({routes}){intents}")
    return "\n".join(lines)
