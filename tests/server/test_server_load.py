"""Load over loopback: 50 concurrent streaming clients on the fake backend, no errors, every
turn stored once; `llmos bench-server`'s report and its ratios to `llmos ask`. (The latency
figures are a benchmark: `llmos bench-server --fake`.)"""

from __future__ import annotations

import asyncio
import json

from agent.cli.main import main
from agent.server.bench import ask_decode_tok_s, ask_ratios, format_report, run_load, summarize_ask


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
    assert main(["bench-server", "--fake", "--clients", "1,2", "--requests", "2", "--max-tokens", "16",
                 "--ask-prompts", "1"]) == 0
    out = capsys.readouterr().out
    assert "llmos server bench (fake backend" in out and "tokens/s" in out
    assert "llmos ask, one stream:" in out.splitlines()[-1] and "N=8 total / ask: None" in out
    report = {"fake": True, "url": "u", "max_tokens": 1, "levels": [{"clients": 1, "tokens_per_s": 2.0}]}
    title, header, row = format_report(report).splitlines()
    assert title == "llmos server bench (fake backend, u, max_tokens=1)"
    assert header.split()[:2] == ["N", "req/s"] and "tokens/s" in header.split()
    # one column a figure, right-aligned under its title; what the level lacks shows as None
    assert len(row) == len(header) and row.split() == ["1", "None", "None", "None", "2.0", *["None"] * 5]
    assert row.index("2.0") + 3 == header.index("tokens/s") + len("tokens/s")


def test_ask_decode_rate_counts_the_tokens_after_the_first():
    reply = {"timings_ms": {"first_token": 100.0, "generate": 1100.0, "total": 1200.0}, "tokens": {"completion": 51}}
    assert ask_decode_tok_s(reply) == 50.0  # 50 tokens after the first, in 1 s
    assert ask_decode_tok_s({"timings_ms": {"generate": 5.0}, "tokens": {"completion": 9}}) is None
    assert ask_decode_tok_s({"timings_ms": {"first_token": 5.0, "generate": 9.0}, "tokens": {"completion": 1}}) is None


def test_ratios_to_ask_from_fake_measurements():
    levels = [{"clients": 1, "per_stream_tokens_per_s": 20.0, "tokens_per_s": 19.0},
              {"clients": 8, "per_stream_tokens_per_s": 9.0, "tokens_per_s": 80.0}]
    assert ask_ratios(levels, 40.0) == {"single_stream_vs_ask": 0.5, "scaling_8": 2.0}
    assert ask_ratios(levels[:1], 40.0)["scaling_8"] is None  # no level of 8: null, not a guess
    assert ask_ratios(levels, None) == {"single_stream_vs_ask": None, "scaling_8": None}
    summary = summarize_ask([{"decode_tok_s": 30.0, "first_token_ms": 50.0}, {"error": "RuntimeError: boom"},
                             {"decode_tok_s": 50.0, "first_token_ms": 70.0}], max_tokens=64)
    assert summary["decode_tok_s"] == 40.0 and summary["errors"] == 1 and summary["runs"] == 3


def test_bench_server_json_is_one_last_line_with_the_ask_ratios(capsys):
    # fake server, and `llmos ask --json` run as a subprocess on the fake backend: the plumbing
    assert main(["bench-server", "--fake", "--clients", "1,8", "--requests", "1", "--max-tokens", "8",
                 "--ask-prompts", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"levels", "ask", "single_stream_vs_ask", "scaling_8", "errors"} <= set(report)
    assert report["ask"]["runs"] == 2 and report["ask"]["errors"] == 0, report["ask"]["error_samples"]
    assert [lv["clients"] for lv in report["levels"]] == [1, 8]
    for level in report["levels"]:
        assert {"per_stream_tokens_per_s", "tokens_per_s", "ttft_ms_p50", "ttft_ms_p95"} <= set(level)
    assert all(isinstance(report[k], float) for k in ("single_stream_vs_ask", "scaling_8"))


def test_follow_up_turns_send_the_first_reply_back_and_time_the_next_turn(make_app, serve):
    from agent.server.bench import follow_up_turns

    replies = ["The keeper lit the lamp.", "Then the ships came home.", "The birds stayed.", "Then winter came."]
    app, agent, backend = make_app(replies=replies, delay=0.001)
    with serve(app) as url:
        result = asyncio.run(follow_up_turns(url, conversations=2, repeats=1))
    assert result["errors"] == 0, result["error_samples"]
    assert result["follow_up_ttft_ms_p50"] > 0 and result["history_tokens"] > 0
    # each conversation's second turn carried its first turn's reply as history
    sent = [call.messages for call in backend.history]
    assert len(sent) == 4
    assert [m["content"] for m in sent[1] if m["role"] == "assistant"] == ["The keeper lit the lamp."]
    assert [m["content"] for m in sent[3] if m["role"] == "assistant"] == ["The birds stayed."]
