"""``llmos serve`` (the HTTP server), ``llmos serve-key`` (make an API key and its hash) and
``llmos bench-server`` (load the server over loopback and report throughput)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.cli.common import add_config_arg, config_from_args, tqdm_progress

__all__ = ["register"]


def register(groups: Any) -> None:
    top = groups.top
    serve = top.add_parser("serve", help="OpenAI-compatible HTTP server with a session API",
                           description="Serve the agent over HTTP: /v1/chat/completions (OpenAI API, streaming), "
                                       "/v1/models, the session API under /v1/sessions, /healthz, /docs.")
    serve.add_argument("--host", default=None, help="interface to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default: server.port, 8000)")
    serve.add_argument("--model", help="model preset, directory, .gguf file or HF id (overrides the config)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    add_config_arg(serve)
    serve.set_defaults(func=_serve)

    key = top.add_parser("serve-key", help="make an API key for `llmos serve` and print its config entry",
                         description="Print a new random API key (give it to the client) and the server.api_keys "
                                     "entry holding its SHA-256 hash (put that in the config).")
    key.add_argument("--key", help="hash this key instead of making one ('-' reads it from standard input)")
    key.add_argument("--name", default="client", help="the key's label in logs (default: client)")
    key.add_argument("--users", default="*", help="comma-separated users the key may act for (default: * = any)")
    key.set_defaults(func=_serve_key)

    bench = top.add_parser("bench-server", help="load-test `llmos serve` over loopback",
                           description="Drive the server with N concurrent streaming clients and report, per "
                                       "level, requests/s, time to first token p50/p95, per-stream decode and "
                                       "total tokens/s and server overhead; beside them `llmos ask`'s "
                                       "single-stream decode tokens/s, measured in the same run: "
                                       "single_stream_vs_ask = one served stream (N=1) / ask, scaling_8 = "
                                       "total tokens/s at N=8 / ask (null without an 8 level).")
    bench.add_argument("--url", help="a running server's base URL (default: start one for the run)")
    bench.add_argument("--fake", action="store_true", help="serve the fake backend (measures server overhead)")
    bench.add_argument("--clients", default="1,4,16", help="concurrency levels (default: 1,4,16)")
    bench.add_argument("--requests", type=int, default=None, help="requests per client per level")
    bench.add_argument("--max-tokens", type=int, default=64, help="max_tokens per request (default: 64)")
    bench.add_argument("--no-stream", action="store_true", help="non-streamed requests")
    bench.add_argument("--stagger", type=float, default=0.0,
                       help="spread the clients' first requests over this many seconds (default: all at once)")
    bench.add_argument("--ask-prompts", type=int, default=4,
                       help="`llmos ask --json` runs for the single-stream reference, half before the server "
                            "starts and half after it stops (default: 4; 0: skip, ratios null)")
    bench.add_argument("--no-follow-up", action="store_true",
                       help="skip timing the next turn of three ~500-token conversations (follow_up_ttft_ms)")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object (the last line)")
    add_config_arg(bench)
    bench.set_defaults(func=_bench)


def _serve(args: argparse.Namespace) -> int:
    from agent.server.run import serve

    serve(config_from_args(args), host=args.host, port=args.port, access_log=args.access_log,
          progress=tqdm_progress())
    return 0


def _serve_key(args: argparse.Namespace) -> int:
    from agent.server.auth import hash_key, new_key

    key = args.key
    if key == "-":
        key = sys.stdin.readline().strip()
    made = not key
    key = key or new_key()
    users = [u.strip() for u in args.users.split(",") if u.strip()] or ["*"]
    if made:
        print(f"API key (give it to the client; it is not stored anywhere): {key}\n")
    print("server:\n  api_keys:")
    print(f"    - name: {json.dumps(args.name)}\n      sha256: {hash_key(key)}\n      users: {json.dumps(users)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from agent.server.bench import bench_server, format_report

    clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    report = bench_server(url=args.url, config=args.config, fake=args.fake, clients=clients,
                          requests_per_client=args.requests, max_tokens=args.max_tokens, stream=not args.no_stream,
                          stagger_s=args.stagger, ask_prompts=max(0, args.ask_prompts),
                          follow_ups=not args.no_follow_up)
    print(json.dumps(report) if args.json else format_report(report))
    return 0 if not report.get("errors") else 1
