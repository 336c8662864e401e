"""Running the server: ``llmos serve`` calls :func:`serve`.

The port is bound first: a port that is taken fails at once with a message that says what
to do, before the model loads and before anything is announced; "serving on ..." is printed
only once the socket is listening.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import sys
from typing import Any

from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.models.embedded import Progress

__all__ = ["serve", "run_app", "bind"]

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, or a :class:`ConfigError` that says
    how to fix the address."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}; pass --host with an address of this "
                          "machine (e.g. 127.0.0.1 or 0.0.0.0)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use (another server is listening there): stop it, or "
                              "pass --port with a free port") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    sock.setblocking(False)
    return sock


def run_app(app: Any, host: str, port: int, *, access_log: bool = False, log_level: str = "warning",
            sock: socket.socket | None = None) -> None:
    """Serve ``app`` with uvicorn until interrupted (on ``sock`` when given, else bound here)."""
    import uvicorn

    sock = sock or bind(host, port)
    # One process: the model and the batching scheduler live here, shared by all requests.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level=log_level,
                                           timeout_graceful_shutdown=10))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def serve(config: AgentConfig, *, host: str | None = None, port: int | None = None, access_log: bool = False,
          progress: Progress | None = None) -> None:
    """Build the agent from ``config`` and serve it over HTTP."""
    from agent.server.app import build_served_agent, create_app

    server = config.server
    host = host or server.host
    port = server.port if port is None else port
    sock = bind(host, port)  # a taken port fails now, not after the model has loaded
    try:
        if not server.api_keys and not _loopback(host):
            print(f"warning: listening on {host} with no API keys: only clients on this machine will be answered; "
                  "add server.api_keys (llmos serve-key) to serve others", file=sys.stderr)
        agent = build_served_agent(config, progress)
    except BaseException:
        sock.close()
        raise
    try:
        app = create_app(agent, server)
        bound = sock.getsockname()[1]
        print(f"llmos: serving {app.state.llmos.agent_model!r} (model {agent.backend.name}) on http://{host}:{bound} "
              f"- OpenAI API at /v1" + (", docs at /docs" if server.docs != "off" else ""), file=sys.stderr, flush=True)
        run_app(app, host, port, access_log=access_log, log_level="info" if access_log else "warning", sock=sock)
    finally:
        agent.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
