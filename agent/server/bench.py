"""Load ``llmos serve`` over loopback and report what concurrency buys.

:func:`bench_server` starts a server (or uses ``url``), then for each concurrency level N
runs N clients at once, each sending ``requests_per_client`` streamed chat completions one
after another, and reports per level: requests/s, time to first token, total completion
tokens/s, and the server's own overhead per request (client-observed latency minus the
generation time the server reports in ``llmos.timings_ms.generate``). Every request goes to
127.0.0.1 and the run is bounded in count and time.

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

__all__ = ["bench_server", "format_report", "run_load"]

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
        timings = (chunk.get("llmos") or {}).get("timings_ms")
        if timings:
            record["generate_ms"] = timings.get("generate")
    record["ok"] = True


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


def bench_server(url: str | None = None, *, config: str | None = None, fake: bool = False,
                 clients: tuple[int, ...] = (1, 4, 16), requests_per_client: int | None = None,
                 max_tokens: int = 64, stream: bool = True, fake_delay_s: float = 0.02, fake_words: int = 24,
                 stagger_s: float = 0.0, api_key: str | None = None) -> dict[str, Any]:
    """Figures per concurrency level, and each level's total tokens/s relative to N=1.

    Without ``url`` a server is started for the run (its data in a temporary directory).
    Without ``config`` that server runs the default model with memory and understanding off,
    so the figures measure serving and generation; pass a config to include its pipeline.
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
    finally:
        if server is not None:
            server.stop()
    base = next((lv["tokens_per_s"] for lv in levels if lv["clients"] == 1), None)
    for level in levels:
        level["tokens_per_s_vs_1"] = round(level["tokens_per_s"] / base, 2) if base else None
    return {"url": url, "fake": fake, "stream": stream, "max_tokens": max_tokens, "stagger_s": stagger_s,
            "fake_delay_s": fake_delay_s if fake else None, "levels": levels,
            "errors": sum(lv["errors"] for lv in levels)}


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
