"""Load over loopback: 50 concurrent streaming clients on the fake backend, no errors, every
turn stored once. (The latency figures are a benchmark: `llmos bench-server --fake`.)"""

from __future__ import annotations

import asyncio

from agent.cli.main import main
from agent.server.bench import format_report, run_load


def test_fifty_concurrent_streaming_clients_without_errors(make_app, serve):
    app, agent, _ = make_app(delay=0.005, server={"max_concurrent": 1000, "rate_limit_burst": 1000})
    with serve(app) as url:
        result = asyncio.run(run_load(url, clients=50, requests_per_client=3, prompt="one two three four five six",
                                      deadline_s=120))
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] == 150 and result["completion_tokens"] == 150 * 8
    # the fake backend sleeps 5 ms before each of its 8 words: no first token sooner, no reply faster
    assert 5 <= result["ttft_ms_p50"] <= result["ttft_ms_p95"]
    assert 8 * 5 <= result["latency_ms_p50"] <= result["latency_ms_p95"]
    assert result["overhead_ms_p50"] <= result["overhead_ms_p95"] <= result["overhead_ms_max"]
    assert sum(len(agent.sessions(f"bench-{i}")) for i in range(50)) == 150
    print(f"\n50 clients in-process: overhead p50 {result['overhead_ms_p50']} ms, "
          f"p95 {result['overhead_ms_p95']} ms, {result['requests_per_s']} req/s")


def test_bench_server_starts_a_fake_server_and_reports(capsys):
    assert main(["bench-server", "--fake", "--clients", "1,2", "--requests", "2", "--max-tokens", "16"]) == 0
    out = capsys.readouterr().out
    assert "llmos server bench (fake backend" in out and "tokens/s" in out
    report = {"fake": True, "url": "u", "max_tokens": 1, "levels": [{"clients": 1, "tokens_per_s": 2.0}]}
    title, header, row = format_report(report).splitlines()
    assert title == "llmos server bench (fake backend, u, max_tokens=1)"
    assert header.split()[:2] == ["N", "req/s"] and "tokens/s" in header.split()
    # one column a figure, right-aligned under its title; what the level lacks shows as None
    assert len(row) == len(header) and row.split() == ["1", "None", "None", "None", "2.0", *["None"] * 5]
    assert row.index("2.0") + 3 == header.index("tokens/s") + len("tokens/s")
