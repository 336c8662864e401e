"""Core commands: ``ask``, ``models``, ``pull``, ``chat``, ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.cli.common import add_config_arg, build_agent, tqdm_progress

__all__ = ["register"]


def register(groups: Any) -> None:
    top = groups.top
    ask = top.add_parser("ask", help="one turn, non-interactive", description="Send one message and print the reply.")
    ask.add_argument("text", help="the message")
    ask.add_argument("--user", default="local", help="user id (memory namespace); default: local")
    ask.add_argument("--session", help="continue this session (default: a new one)")
    ask.add_argument("--model", help="model preset, directory, .gguf file or HF id (overrides the config)")
    ask.add_argument("--json", action="store_true", help="print the whole reply as one JSON object")
    add_config_arg(ask)
    ask.set_defaults(func=_ask)

    models = top.add_parser("models", help="list named model presets and local caches")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_models)

    pull = top.add_parser("pull", help="download a model from the Hugging Face Hub into the local cache",
                          description="Download what a model needs (config, tokenizer, safetensors) into the Hugging "
                                      "Face cache and verify sizes and hashes. Loading never downloads; this does.")
    pull.add_argument("model", metavar="NAME|HF_ID", help="a preset from `llmos models` or a Hugging Face id (org/name)")
    pull.add_argument("--revision", help="branch, tag or commit (default: main)")
    pull.add_argument("--json", action="store_true", help="print the report as one JSON object")
    pull.set_defaults(func=_pull)

    chat = top.add_parser("chat", help="the terminal chat UI")
    chat.add_argument("--model", help="model preset, directory, .gguf file or HF id (overrides the config)")
    add_config_arg(chat)
    chat.set_defaults(func=_chat)

    test = top.add_parser("test", help="run scripted conversations against an agent",
                          description="Run scripted conversations (YAML) and report pass/fail, latency, tokens.")
    test.add_argument("conversations", help="YAML file of conversations with expectations")
    test.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_arg(test)
    test.set_defaults(func=_test)

    bench = top.add_parser("bench", help="measure load time, latency, tokens/s and memory")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--model", default=None, help="model to measure (default: the embedded default)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, no cold conversion (noisier figures)")
    bench.add_argument("--memory", action="store_true", help="also benchmark the memory store (slower)")
    bench.add_argument("--quant", action="store_true", help="also compare fp32 / bf16 / int8 (and 8/4-bit on GPU)")
    bench.add_argument("--server", action="store_true", help="also drive llmos serve over loopback at N=1,4,8,16")
    bench.set_defaults(func=_bench)


def _ask(args: argparse.Namespace) -> int:
    agent = build_agent(args)
    try:
        # A long /summarize runs several model calls before its first word: show a bar.
        stream = agent.stream(args.text, user_id=args.user, session_id=args.session,
                              progress=None if args.json else tqdm_progress("working"))
        if args.json:
            reply = stream.result()
            print(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False))
        else:
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
    finally:
        agent.close()
    return 0


def _test(args: argparse.Namespace) -> int:
    from agent.toolbox.convtest import load_suite, run_suite

    suite = load_suite(args.conversations)
    agent = build_agent(args)

    def show(result: Any) -> None:
        if args.json:
            return
        mark = "PASS" if result.passed else "FAIL"
        print(f"{mark} {result.conversation} #{result.turn} ({result.latency_ms:.0f} ms, {result.tokens} tokens)")
        for failure in result.failures:
            print(f"     - {failure}")

    try:
        results = run_suite(agent, suite, on_result=show)
    finally:
        agent.close()
    passed = sum(r.passed for r in results)
    if args.json:
        print(json.dumps({"passed": passed, "failed": len(results) - passed,
                          "turns": [r.model_dump() for r in results]}, indent=2))
    else:
        latencies = sorted(r.latency_ms for r in results)
        median = latencies[len(latencies) // 2] if latencies else 0
        print(f"{passed} passed, {len(results) - passed} failed (median turn {median:.0f} ms)")
    return 0 if passed == len(results) else 1


def _models(args: argparse.Namespace) -> int:
    from agent.models.catalog import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['params']:>5}  {r['status']:<24} {r['source']}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from agent.models.pull import format_bytes, pull, pull_target

    if pull_target(args.model) is None:
        note = f"{args.model} is the embedded model: it ships with llmos, there is nothing to pull"
        print(json.dumps({"model": args.model, "embedded": True, "message": note}) if args.json else note)
        return 0
    report = pull(args.model, args.revision)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    hashed = sum(f.check != "size" for f in report.files)
    checked = ("sizes and hashes verified" if hashed == len(report.files)
               else f"sizes verified, hashes for {hashed} (the Hub gave none for the others)")
    print(f"pulled {report.repo_id} (revision {report.revision}, commit {report.commit[:12]})")
    print(f"  {len(report.files)} files, {format_bytes(report.total_bytes)} "
          f"({format_bytes(report.downloaded_bytes)} downloaded now), {checked}")
    print(f"  into {report.folder}")
    target = args.model if report.revision == "main" else str(report.folder)
    print(f"  use it offline: llmos ask --model {target} \"hello\"")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from tui import run_chat

    return int(run_chat(args.config, model=args.model) or 0)


def _bench(args: argparse.Namespace) -> int:
    from agent.toolbox.bench import run_bench

    return run_bench(model=args.model, as_json=args.json, quick=args.quick, memory=args.memory,
                     quant=args.quant, server=args.server)
