"""API fuzzing with schemathesis, driven by the server's own OpenAPI document: every
operation gets generated requests (valid and invalid), sent to the app with the fake
backend, and every response is checked: no 5xx, status codes, content types, headers and
bodies as documented, invalid input refused, requests without a key refused (401).

Bounded for the suite: ``FUZZ_EXAMPLES`` examples per operation (default 20,
derandomized, a few seconds). ``make fuzz`` runs it long (500, random) and a CLI pass of
schemathesis against a live ``llmos serve`` on the fake backend.

Not checked: ``positive_data_acceptance`` (a schema-valid request answered 400). Some
rules are not expressible in the document: the last message must come from the user, a
message is too long after normalisation (``max_input_chars``), more messages than
``server.max_messages``. Those 400s say what to fix; the document cannot say them.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from agent.server.auth import hash_key  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(make_app, tmp_path):
    from memory import FakeEmbedder, MemoryConfig, build_store

    embedder = FakeEmbedder()
    store = build_store(MemoryConfig(), data_dir=tmp_path / "memory", embedder=embedder)
    app, _, _ = make_app(memory={"enabled": True}, agent_kwargs={"memory": store, "embedder": embedder},
                         server={"api_keys": [{"name": "fuzz", "sha256": hash_key(KEY), "users": ["*"]}],
                                 "rate_limit_per_minute": 1_000_000, "rate_limit_burst": 1_000_000})
    # The key goes in as the document's bearer scheme, so schemathesis sends it, and also
    # sends requests without it (those must be 401).
    config = schemathesis.config.SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": KEY}}}})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config, headers=AUTH)


@pytest.mark.slow  # fuzzing: make test runs it bounded, make fuzz long, make test-fast not at all
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck), print_blob=True)
def test_every_response_is_as_documented(case):
    case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])


def test_the_document_lists_the_real_statuses_and_the_bearer_scheme(make_app, client_for):
    """Found by the fuzzer: every route was documented with 422 and answered 400."""
    app, _, _ = make_app()
    doc = client_for(app).get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert "422" not in chat["responses"] and {"400", "401", "403", "413", "429", "502"} <= set(chat["responses"])
    assert chat["responses"]["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert "409" in doc["paths"]["/v1/sessions"]["post"]["responses"]
    assert all("422" not in op["responses"] for ops in doc["paths"].values() for op in ops.values())


def test_405_names_every_method_the_path_serves(make_app, client_for):
    """Found by the fuzzer: Starlette named only the first matching route's methods."""
    app, _, _ = make_app()
    answer = client_for(app).put("/v1/sessions/abc")
    assert answer.status_code == 405 and answer.headers["allow"] == "DELETE, GET, PATCH"
    assert answer.json()["error"]["message"] == "method not allowed on this endpoint"


LIVE_SECONDS = int(os.environ.get("FUZZ_LIVE_S", "0"))


@pytest.mark.skipif(not LIVE_SECONDS, reason="make fuzz runs it: the schemathesis CLI against a live `llmos serve`")
def test_live_llmos_serve_with_the_schemathesis_cli(tmp_path):
    """`llmos serve` on the fake backend in its own process, uvicorn and all, and the
    schemathesis CLI over loopback for ``FUZZ_LIVE_S`` seconds at most."""
    import subprocess
    import sys
    import time

    import httpx

    from tests.helpers.server import free_port

    port = free_port()
    config = tmp_path / "fuzz.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nmodel: {{backend: fake}}\nmemory: {{enabled: false}}\n"
        "understanding: {enabled: false}\n"
        f"server: {{api_keys: [{{name: fuzz, sha256: {hash_key(KEY)}, users: ['*']}}], "
        "rate_limit_per_minute: 1000000, rate_limit_burst: 1000000, max_concurrent: 1000}\n")
    (tmp_path / "schemathesis.toml").write_text(f'[auth.openapi.bearer]\nbearer = "{KEY}"\n')
    server = subprocess.Popen([sys.executable, "-m", "agent.cli.main", "serve", "--config", str(config),
                               "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    raise AssertionError(f"llmos serve did not start: {server.communicate()[1][-2000:]}") from None
                time.sleep(0.2)
        cli = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
               "--config-file", str(tmp_path / "schemathesis.toml"), "run", f"{url}/openapi.json",
               "-H", f"Authorization: Bearer {KEY}",  # to load the document; the checks drop it where they test auth
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--max-time", str(LIVE_SECONDS), "--max-examples", os.environ.get("FUZZ_EXAMPLES", "500"),
               "--report", "junit", "--report-dir", str(tmp_path / "report")]
        run = subprocess.run(cli, capture_output=True, text=True, timeout=LIVE_SECONDS + 300)
        print(run.stdout[-6000:])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(20)
