"""The OpenAI-compatible HTTP server (``llmos serve``) and its session API.

Importing this package is cheap: FastAPI and uvicorn load with the names that need them
(``agent.config`` imports :class:`ServerConfig` from here).

::

    app.py              create_app(agent), build_served_agent(config)
    run.py              serve(config, host, port): bind, then uvicorn
    config.py           ServerConfig: keys, limits, webhook, batching
    auth.py limits.py   who may call, and how much
    openai_routes.py    /v1/chat/completions, /v1/models
    session_routes.py   /v1/sessions..., /v1/users/...
    turns.py threads.py how OpenAI requests map onto stored sessions
    session_ids.py      session ids are per user
    streaming.py        worker thread -> server-sent events, cancel on disconnect
    webhook.py          handoff notifications
    bench.py            bench_server(): load over loopback
"""

from __future__ import annotations

from agent.config import ApiKeyConfig, BatchingConfig, ServerConfig, WebhookConfig
from agent.lazy import lazy_getattr

__all__ = [
    "ServerConfig",
    "ApiKeyConfig",
    "WebhookConfig",
    "BatchingConfig",
    "create_app",
    "build_served_agent",
    "serve",
    "bench_server",
    "hash_key",
    "new_key",
]

_LAZY = {
    "create_app": "agent.server.app",
    "build_served_agent": "agent.server.app",
    "serve": "agent.server.run",
    "bench_server": "agent.server.bench",
    "hash_key": "agent.server.auth",
    "new_key": "agent.server.auth",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
