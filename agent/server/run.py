"""Running the server: ``llmos serve`` calls :func:`serve`."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

from agent.config import AgentConfig
from agent.models.embedded import Progress

__all__ = ["serve", "run_app"]

log = logging.getLogger(__name__)


def run_app(app: Any, host: str, port: int, *, access_log: bool = False, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    # One process: the model and the batching scheduler live here, shared by all requests.
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level,
                timeout_graceful_shutdown=10)


def serve(config: AgentConfig, *, host: str | None = None, port: int | None = None, access_log: bool = False,
          progress: Progress | None = None) -> None:
    """Build the agent from ``config`` and serve it over HTTP."""
    from agent.server.app import build_served_agent, create_app

    server = config.server
    host = host or server.host
    port = server.port if port is None else port
    if not server.api_keys and not _loopback(host):
        print(f"warning: listening on {host} with no API keys: only clients on this machine will be answered; "
              "add server.api_keys (llmos serve-key) to serve others", file=sys.stderr)
    agent = build_served_agent(config, progress)
    try:
        app = create_app(agent, server)
        print(f"llmos: serving {app.state.llmos.agent_model!r} (model {agent.backend.name}) on http://{host}:{port} "
              f"- OpenAI API at /v1, docs at /docs", file=sys.stderr, flush=True)
        run_app(app, host, port, access_log=access_log, log_level="info" if access_log else "warning")
    finally:
        agent.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
