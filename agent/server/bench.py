"""Load ``llmos serve`` over loopback and report what concurrency buys.

:func:`bench_server` starts a server (or uses ``url``), then for each concurrency level N
runs N clients at once, each sending ``requests_per_client`` streamed chat completions one
after another, and reports per level: requests/s, time to first token, total completion
tokens/s, and the server's own overhead per request (client-observed latency minus the
generation time the server reports in ``llmos.timings_ms.generate``). Every request goes to
127.0.0.1 and the run is bounded in count and time.

The same run also measures ``llmos ask``'s single-stream decode speed (:func:`measure_ask`: the
command itself, same config, same ``max_tokens``, greedy), so the served figures have a fixed
point: ``single_stream_vs_ask`` (one served stream against ``llmos ask``) and ``scaling_8``
(total tokens/s of 8 concurrent streams against one ``llmos ask``).

``fake=True`` serves the fake backend (each reply word costs ``fake_delay_s``), which
isolates the server: HTTP, auth, JSON, sessions, SQLite, streaming.

Run ``python -m agent.server.bench serve-fake --port P`` to start such a fake server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["bench_server", "format_report", "run_load", "measure_ask", "summarize_ask", "ask_decode_tok_s",
           "ask_ratios", "follow_up_turns"]

TOPICS = ["a lighthouse keeper", "the ocean", "bread baking", "the moon", "trains", "volcanoes", "jazz", "chess",
          "bees", "glaciers", "robots", "tea", "deserts", "owls", "bridges", "Paris"]

# Loads are bounded: a run never lasts longer than this, whatever the arguments.
MAX_RUN_S = 1800.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


# The first non-empty content delta of a streamed reply (the time to first token).
_FIRST_CONTENT = re.compile(rb'"delta":\{"content":"[^"]')


async def _one(url: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """One request over a raw connection: a load generator that parses little, so the
    client's own CPU use (shared with the server on a small machine) stays out of the way."""
    parts = urlsplit(url)
    body = json.dumps(payload).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    record: dict[str, Any] = {"ok": False, "ttft_s": None, "tokens": 0, "generate_ms": None}
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(head + body)
        raw = bytearray()
        while chunk := await reader.read(65536):
            if record["ttft_s"] is None and _FIRST_CONTENT.search(chunk):
                record["ttft_s"] = time.perf_counter() - start
            raw += chunk
        record["latency_s"] = time.perf_counter() - start
        writer.close()
        _parse(bytes(raw), record)
    except Exception as exc:  # counted and reported, never fatal to the run
        record["error"] = f"{type(exc).__name__}: {exc}"
    record.setdefault("latency_s", time.perf_counter() - start)
    return record


def _parse(raw: bytes, record: dict[str, Any]) -> None:
    """Status, usage, generation time and errors from a whole HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head[9:12])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    if status != 200:
        record["error"] = f"HTTP {status}: {body[:200]!r}"
        return
    events = [body] if not body.startswith(b"data:") else \
        [line[6:] for line in body.split(b"\n") if line.startswith(b"data: {")]
    for event in events:
        if b'"usage"' not in event and b'"timings_ms"' not in event and b'"error"' not in event:
            continue  # content chunks: nothing to count here
        chunk = json.loads(event)
        if "error" in chunk:
            record["error"] = chunk["error"].get("message")
            return
        if chunk.get("usage"):
            record["tokens"] = chunk["usage"]["completion_tokens"]
            record["prompt_tokens"] = chunk["usage"].get("prompt_tokens")
        message = (chunk.get("choices") or [{}])[0].get("message") if isinstance(chunk.get("choices"), list) else None
        if message:  # a reply that was not streamed: keep its text (the follow-up turn sends it back)
            record["text"] = message.get("content") or ""
        timings = (chunk.get("llmos") or {}).get("timings_ms")
        if timings:
            record["generate_ms"] = timings.get("generate")
    record["ok"] = True


FOLLOW_UP_HISTORY = (
    "I keep a logbook of the lighthouse at the end of the spit, where the river meets the sea. "
    "For more than a century its keepers climbed the spiral stairs each evening to light the lamp "
    "and each morning to put it out. Ships coming home in the dark depended on that beam to find "
    "the channel between the sandbanks. When the lamp was automated the last keeper moved into a "
    "small house in the village, but she kept writing down the weather, the boats that passed and "
    "the birds that rested on the rocks. Years later the logbook went to the museum, where visitors "
    "read her notes about storms, calm days and the slow change of the seasons. ")


async def follow_up_turns(url: str, *, api_key: str | None = None, conversations: int = 3, repeats: int = 4,
                          max_tokens: int = 32, model: str = "llmos") -> dict[str, Any]:
    """The time to first token of a conversation's next turn: per conversation a first turn
    with a long user message (``repeats`` times :data:`FOLLOW_UP_HISTORY`, ~500 tokens with the
    system prompt; not streamed), then the next turn (that history, the reply, a short question;
    streamed). A server that keeps the first turn's computed prefix answers the second without
    prefilling the history again. Each conversation opens with its own words, so they share
    only the system prompt. Medians over ``conversations``."""
    endpoint = url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    first_ms, next_ms, history = [], [], []
    errors: list[str | None] = []
    for c in range(conversations):
        opening = f"Conversation {c + 1} about {TOPICS[(3 * c) % len(TOPICS)]}. "
        messages = [{"role": "user", "content": opening + FOLLOW_UP_HISTORY * repeats + "What do you make of it?"}]
        base = {"model": model, "max_tokens": max_tokens, "temperature": 0.0, "user": f"follow-up-{c}"}
        first = await _one(endpoint, {**base, "messages": messages, "stream": False}, headers)
        if not first["ok"]:
            errors.append(first.get("error"))
            continue
        first_ms.append(first["latency_s"] * 1000)
        messages = [*messages, {"role": "assistant", "content": first.get("text", "")},
                    {"role": "user", "content": "And what happened next?"}]
        second = await _one(endpoint, {**base, "messages": messages, "stream": True,
                                       "stream_options": {"include_usage": True}}, headers)
        if not second["ok"] or second["ttft_s"] is None:
            errors.append(second.get("error") or "no content streamed")
            continue
        next_ms.append(second["ttft_s"] * 1000)
        if second.get("prompt_tokens"):
            history.append(second["prompt_tokens"])
    return {"conversations": conversations, "errors": len(errors), "error_samples": errors[:3],
            "history_tokens": _median([float(h) for h in history]),
            "first_turn_latency_ms_p50": _median(first_ms), "follow_up_ttft_ms_p50": _median(next_ms),
            "follow_up_ttft_ms_max": round(max(next_ms), 2) if next_ms else None}


def _dechunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = body.find(b"\r\n", pos)
        size = int(body[pos:end], 16) if end > pos else 0
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


async def run_load(url: str, clients: int, requests_per_client: int, *, max_tokens: int = 64, stream: bool = True,
                   prompt: str | None = None, api_key: str | None = None, model: str = "llmos",
                   stagger_s: float = 0.0, deadline_s: float = MAX_RUN_S) -> dict[str, Any]:
    """N concurrent clients against ``url`` (the server's base URL); figures for one level.

    Each client sends its requests one after another. ``stagger_s`` spreads the clients'
    first requests evenly over that many seconds (0: all at once, a thundering herd)."""
    endpoint = url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def worker(i: int) -> list[dict[str, Any]]:
        await asyncio.sleep(stagger_s * i / max(clients, 1))
        out = []
        for r in range(requests_per_client):
            text = prompt or f"Write a long story about {TOPICS[(i + r) % len(TOPICS)]}."
            payload = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream,
                       "max_tokens": max_tokens, "temperature": 0.0, "user": f"bench-{i}",
                       "stream_options": {"include_usage": True}}
            out.append(await _one(endpoint, payload, headers))
        return out

    started = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(clients))), deadline_s)
    wall = time.perf_counter() - started
    records = [r for batch in results for r in batch]
    ok = [r for r in records if r["ok"]]
    tokens = sum(r["tokens"] for r in ok)
    per_stream = [(r["tokens"] - 1) / (r["latency_s"] - r["ttft_s"]) for r in ok
                  if r["ttft_s"] is not None and r["tokens"] > 1 and r["latency_s"] > r["ttft_s"]]
    overhead = [r["latency_s"] * 1000 - r["generate_ms"] for r in ok if r["generate_ms"] is not None]
    errors = [r.get("error") for r in records if not r["ok"]]
    return {
        "clients": clients, "requests": len(records), "errors": len(errors), "error_samples": errors[:3],
        "wall_s": round(wall, 2), "requests_per_s": round(len(ok) / wall, 2),
        "ttft_ms_p50": _pct([r["ttft_s"] * 1000 for r in ok if r["ttft_s"] is not None], 0.5),
        "ttft_ms_p95": _pct([r["ttft_s"] * 1000 for r in ok if r["ttft_s"] is not None], 0.95),
        "latency_ms_p50": _pct([r["latency_s"] * 1000 for r in ok], 0.5),
        "latency_ms_p95": _pct([r["latency_s"] * 1000 for r in ok], 0.95),
        "completion_tokens": tokens, "tokens_per_s": round(tokens / wall, 2),
        "per_stream_tokens_per_s": _median(per_stream),
        "overhead_ms_p50": _pct(overhead, 0.5), "overhead_ms_p95": _pct(overhead, 0.95),
        "overhead_ms_max": round(max(overhead), 2) if overhead else None,
    }


def ask_decode_tok_s(reply: dict[str, Any]) -> float | None:
    """Decode tokens/s of one ``llmos ask --json`` reply: the tokens after the first over the
    time after the first (``timings_ms.generate`` - ``timings_ms.first_token``), as the server
    bench counts a stream (its first token is the prompt's prefill, not a decode step)."""
    timings, tokens = reply.get("timings_ms") or {}, (reply.get("tokens") or {}).get("completion") or 0
    generate, first = timings.get("generate"), timings.get("first_token")
    if generate is None or first is None or tokens < 2 or generate <= first:
        return None
    return (tokens - 1) / ((generate - first) / 1000)


def _ask_once(text: str, env: dict[str, str], config: str | None, timeout_s: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "agent.cli.main", "ask", "--json", *(["--config", config] if config else []), text]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"llmos ask exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return dict(json.loads(lines[-1]))


def measure_ask(prompts: list[str], env: dict[str, str], *, config: str | None = None, max_tokens: int = 64,
                timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """``llmos ask --json`` once per prompt, each a fresh process as a user runs it, with the
    bench's config and environment, ``max_tokens`` new tokens, greedy. One record per prompt:
    ``decode_tok_s`` and ``first_token_ms``, or ``error`` (reported, never fatal to the run)."""
    env = {**env, "LLMOS_GENERATION__MAX_NEW_TOKENS": str(max_tokens), "LLMOS_GENERATION__TEMPERATURE": "0"}
    records: list[dict[str, Any]] = []
    for text in prompts:
        try:
            reply = _ask_once(text, env, config, timeout_s)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            records.append({"error": f"{type(exc).__name__}: {exc}"})
            continue
        records.append({"decode_tok_s": ask_decode_tok_s(reply),
                        "first_token_ms": (reply.get("timings_ms") or {}).get("first_token")})
    return records


def summarize_ask(records: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    """Median decode tokens/s and first-token time of :func:`measure_ask` records."""
    rates = [r["decode_tok_s"] for r in records if r.get("decode_tok_s") is not None]
    firsts = [r["first_token_ms"] for r in records if r.get("first_token_ms") is not None]
    errors = [r["error"] for r in records if "error" in r]
    return {"runs": len(records), "errors": len(errors), "error_samples": errors[:3], "max_tokens": max_tokens,
            "decode_tok_s": _median(rates), "decode_tok_s_runs": [round(r, 2) for r in rates],
            "first_token_ms_p50": _median(firsts)}


def ask_ratios(levels: list[dict[str, Any]], ask_tok_s: float | None) -> dict[str, float | None]:
    """``single_stream_vs_ask``: one served stream's decode tokens/s (concurrency 1) over
    ``llmos ask``'s; ``scaling_8``: total tokens/s at 8 concurrent streams over ``llmos ask``'s
    single stream. None where a level or the ask figure is missing."""
    def ratio(value: float | None) -> float | None:
        return round(value / ask_tok_s, 3) if value and ask_tok_s else None

    by_n = {lv["clients"]: lv for lv in levels}
    return {"single_stream_vs_ask": ratio(by_n.get(1, {}).get("per_stream_tokens_per_s")),
            "scaling_8": ratio(by_n.get(8, {}).get("tokens_per_s"))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), for server CPU per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class _Server:
    """A server subprocess on a free loopback port, stopped on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, ready_s: float = 600.0) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("w")
        self.proc = subprocess.Popen([*argv, "--port", str(self.port)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait(ready_s, log_path)

    def _wait(self, ready_s: float, log_path: Path) -> None:
        import httpx

        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"the server did not start within {ready_s:.0f} s:\n{log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _ask_plan(env: dict[str, str], workdir: Path, fake: bool, prompt: str | None,
              count: int) -> tuple[dict[str, str], list[str]]:
    """The environment and prompts of the bench's ``llmos ask`` runs: the server's settings,
    its own data directory (its sessions stay out of the server's store), the same prompts."""
    ask_env = {**env, "LLMOS_DATA_DIR": str(workdir / "ask-data")}
    if fake:
        ask_env.update(LLMOS_MODEL__BACKEND="fake", LLMOS_MEMORY__ENABLED="false", LLMOS_UNDERSTANDING__ENABLED="false")
    return ask_env, [prompt or f"Write a long story about {TOPICS[i % len(TOPICS)]}." for i in range(count)]


def bench_server(url: str | None = None, *, config: str | None = None, fake: bool = False,
                 clients: tuple[int, ...] = (1, 4, 16), requests_per_client: int | None = None,
                 max_tokens: int = 64, stream: bool = True, fake_delay_s: float = 0.02, fake_words: int = 24,
                 stagger_s: float = 0.0, api_key: str | None = None, ask_prompts: int = 4,
                 follow_ups: bool = True) -> dict[str, Any]:
    """Figures per concurrency level, and each level's total tokens/s relative to N=1 and to
    ``llmos ask``.

    Without ``url`` a server is started for the run (its data in a temporary directory).
    Without ``config`` that server runs the default model with memory and understanding off,
    so the figures measure serving and generation; pass a config to include its pipeline.
    ``ask_prompts`` runs of ``llmos ask`` on the same config (half before the server starts,
    half after it stops, so neither competes with the server for the CPU and noise over the
    run touches both); 0 skips them. With ``fake`` they run on the fake backend too, which
    checks the plumbing but makes the ratios meaningless. ``follow_ups``: also time the next
    turn of a few ~500-token conversations (:func:`follow_up_turns`; not with ``fake``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="llmos-bench-"))
    server: _Server | None = None
    env = {**os.environ, "LLMOS_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1",
           # generous limits: the bench measures throughput, not the limiter
           "LLMOS_SERVER__RATE_LIMIT_PER_MINUTE": "1000000", "LLMOS_SERVER__RATE_LIMIT_BURST": "100000",
           "LLMOS_SERVER__MAX_CONCURRENT": "10000"}
    if not config and not fake:
        env.update(LLMOS_MEMORY__ENABLED="false", LLMOS_UNDERSTANDING__ENABLED="false")
    prompt = " ".join(["word"] * fake_words) if fake else None
    ask_env, ask_texts = _ask_plan(env, workdir, fake, prompt, ask_prompts)
    half = (len(ask_texts) + 1) // 2
    ask_records = measure_ask(ask_texts[:half], ask_env, config=config, max_tokens=max_tokens)
    if url is None:
        if fake:
            argv = [sys.executable, "-m", "agent.server.bench", "serve-fake", "--delay", str(fake_delay_s),
                    "--data-dir", str(workdir / "data")]
        else:
            argv = [sys.executable, "-m", "agent.cli.main", "serve", *(["--config", config] if config else [])]
        server = _Server(argv, env, workdir / "server.log")
        url = server.url
    levels = []
    try:
        asyncio.run(run_load(url, 1, 1, max_tokens=max_tokens, stream=stream, prompt=prompt, api_key=api_key))
        for n in clients:
            per_client = requests_per_client or (max(2, 200 // n) if fake else 2)
            cpu = _cpu_s(server.proc.pid) if server else None
            level = asyncio.run(run_load(url, n, per_client, max_tokens=max_tokens, stream=stream, prompt=prompt,
                                         api_key=api_key, stagger_s=stagger_s))
            if cpu is not None and server is not None:
                used = _cpu_s(server.proc.pid)
                if used is not None and level["requests"]:
                    level["server_cpu_ms_per_request"] = round((used - cpu) * 1000 / level["requests"], 2)
            levels.append(level)
        follow_up = asyncio.run(follow_up_turns(url, api_key=api_key)) if follow_ups and not fake else None
    finally:
        if server is not None:
            server.stop()
    ask_records += measure_ask(ask_texts[half:], ask_env, config=config, max_tokens=max_tokens)
    ask = summarize_ask(ask_records, max_tokens) if ask_records else None
    base = next((lv["tokens_per_s"] for lv in levels if lv["clients"] == 1), None)
    for level in levels:
        level["tokens_per_s_vs_1"] = round(level["tokens_per_s"] / base, 2) if base else None
    return {"url": url, "fake": fake, "stream": stream, "max_tokens": max_tokens, "stagger_s": stagger_s,
            "fake_delay_s": fake_delay_s if fake else None, "levels": levels,
            "errors": sum(lv["errors"] for lv in levels), "ask": ask, "follow_up": follow_up,
            "follow_up_ttft_ms": follow_up["follow_up_ttft_ms_p50"] if follow_up else None,
            **ask_ratios(levels, ask["decode_tok_s"] if ask else None)}


def format_report(report: dict[str, Any]) -> str:
    """The figures as a table."""
    cols = [("clients", "N"), ("requests_per_s", "req/s"), ("ttft_ms_p50", "ttft p50 ms"),
            ("ttft_ms_p95", "ttft p95 ms"), ("tokens_per_s", "tokens/s"), ("tokens_per_s_vs_1", "x N=1"),
            ("per_stream_tokens_per_s", "per-stream tok/s"), ("overhead_ms_p50", "overhead p50 ms"),
            ("overhead_ms_p95", "overhead p95 ms"), ("errors", "errors")]
    lines = ["  ".join(f"{title:>{max(len(title), 6)}}" for _, title in cols)]
    for level in report["levels"]:
        lines.append("  ".join(f"{str(level.get(key)):>{max(len(title), 6)}}" for key, title in cols))
    kind = "fake backend" if report["fake"] else "model"
    if report.get("ask"):
        ask = report["ask"]
        lines.append(f"llmos ask, one stream: {ask['decode_tok_s']} tok/s decode ({ask['runs']} runs, "
                     f"{ask['errors']} errors); served N=1 per-stream / ask: {report.get('single_stream_vs_ask')}; "
                     f"N=8 total / ask: {report.get('scaling_8')}")
    if report.get("follow_up"):
        f = report["follow_up"]
        lines.append(f"next turn of a {f['history_tokens']}-token conversation: first token in "
                     f"{f['follow_up_ttft_ms_p50']} ms (median of {f['conversations']}, max {f['follow_up_ttft_ms_max']}; "
                     f"the first turn took {f['first_turn_latency_ms_p50']} ms whole)")
    return f"llmos server bench ({kind}, {report['url']}, max_tokens={report['max_tokens']})\n" + "\n".join(lines)


def _serve_fake(argv: list[str]) -> None:
    """A server on the fake backend whose replies echo the prompt one word per ``delay``."""
    parser = argparse.ArgumentParser(prog="python -m agent.server.bench serve-fake")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    from agent.backends import FakeBackend
    from agent.config import load_config
    from agent.dialogue import Agent
    from agent.server.app import create_app
    from agent.server.run import run_app

    config = load_config(environ={}, overrides={
        "model": {"backend": "fake"}, "memory": {"enabled": False}, "understanding": {"enabled": False},
        "data_dir": args.data_dir,
        "server": {"rate_limit_per_minute": 1_000_000, "rate_limit_burst": 100_000, "max_concurrent": 10_000,
                   "max_workers": 256}})
    agent = Agent(config, backend=FakeBackend(delay=args.delay))
    try:
        run_app(create_app(agent), "127.0.0.1", args.port)
    finally:
        agent.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve-fake":
        _serve_fake(sys.argv[2:])
    else:
        print("usage: python -m agent.server.bench serve-fake --port P [--delay S] --data-dir D", file=sys.stderr)
        sys.exit(2)
