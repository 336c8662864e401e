"""Tools from MCP servers: every tool a configured server lists becomes a tool of the agent.

::

    tools:
      mcp:
        - {name: files, command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/docs]}
        - {name: crm, url: "http://127.0.0.1:8931/mcp", timeout_s: 20}

:func:`mcp_tools` connects to each server (a ``command`` is started as a subprocess speaking
stdio; a ``url`` is a streamable-HTTP endpoint), lists its tools and returns one
:class:`McpTool` per tool. The model sees the server's name, description and input schema.

The SDK is async and llmos calls tools synchronously from worker threads, so each server has
its own daemon thread running an anyio event loop. That loop holds the session open for the
agent's lifetime and serves calls through a blocking portal: :meth:`McpTool.call` submits
the call to the loop and waits on a thread-safe future for at most ``timeout_s``.

Failures:

- a server that cannot be started or reached raises :class:`ConfigError` from
  :func:`mcp_tools`, naming the command or URL (and, for stdio, the end of its stderr);
- ``isError`` results raise :class:`McpToolError` with the server's text (``run_tool``
  turns it into the ``error: ...`` result the model reads);
- a server that dies mid-call makes that call raise :class:`McpServerGone` as soon as the
  connection closes, and every later call raise it at once, without waiting;
- :meth:`McpTool.close` (the agent closes every tool) ends the session and stops the
  subprocess, asking politely, then cancelling; it waits at most a few seconds.

The ``mcp`` package is an optional extra (``pip install 'llmos[mcp]'``): it is imported only
when a server is configured.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from agent.errors import ConfigError, SkillError
from agent.toolcalls import ToolSpec
from skills.config import McpServerConfig

__all__ = ["mcp_tools", "McpTool", "McpToolError", "McpServerGone", "McpTimeout"]

log = logging.getLogger(__name__)

INSTALL_HINT = "MCP servers need the mcp package: pip install 'llmos[mcp]'"

_STDERR_LINES = 20
"""Lines of a stdio server's stderr kept for error messages."""
_CLOSE_GRACE_S = 3.0
"""How long close() lets a session end cleanly (stdin closed; the SDK terminates a stdio
server that does not exit within 2 s), before cancelling it."""
_CLOSE_FORCE_S = 2.0
"""How long close() then waits for the cancelled session before leaving its thread behind."""
_CONNECTION_CLOSED = -32000
"""JSON-RPC code the SDK gives pending requests when the connection closes (mcp_types.CONNECTION_CLOSED)."""


class McpToolError(SkillError):
    """An MCP tool answered with an error (``isError``), or the server refused the call."""


class McpServerGone(McpToolError):
    """The MCP server's connection is closed (it crashed, exited, or the agent closed it)."""


class McpTimeout(McpToolError):
    """The MCP server did not answer a call within its ``timeout_s``."""


def _require_sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc


def mcp_tools(configs: Sequence[McpServerConfig]) -> dict[str, McpTool]:
    """Connect to every server of ``configs`` (all at once) and return their tools by name.

    Raises :class:`ConfigError` when a server cannot be started or reached, when two servers
    share a name, or when two servers offer a tool of the same name; the servers already
    connected are closed again first."""
    if not configs:
        return {}
    _require_sdk()
    names = [c.name for c in configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"two MCP servers are named {twice[0]!r} in tools.mcp: give each its own name")
    connections = [_Connection(config) for config in configs]
    try:
        for connection in connections:
            connection.start()
        tools: dict[str, McpTool] = {}
        for connection in connections:
            for info in connection.wait_connected():
                made = McpTool.build(connection, info)
                if made is None:
                    continue
                other = tools.get(made.name)
                if other is not None:
                    raise ConfigError(
                        f"the MCP servers {other.server!r} and {connection.name!r} both have a tool named "
                        f"{made.name!r}: list only one of them in tools.mcp, or rename the tool on one server")
                tools[made.name] = made
    except BaseException:
        _close_all(connections)
        raise
    for connection in connections:
        log.info("MCP server %r: %d tools (%s)", connection.name, len(connection.tool_names),
                 ", ".join(connection.tool_names) or "none")
    return tools


def _close_all(connections: Sequence[_Connection]) -> None:
    closers = [threading.Thread(target=c.close, daemon=True) for c in connections]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(_CLOSE_GRACE_S + _CLOSE_FORCE_S + 1)


class McpTool:
    """One tool of an MCP server, callable synchronously from any thread."""

    def __init__(self, connection: _Connection, spec: ToolSpec) -> None:
        self._connection = connection
        self._spec = spec

    @classmethod
    def build(cls, connection: _Connection, info: Any) -> McpTool | None:
        """The tool for ``info`` (an ``mcp_types.Tool``), or None (logged) when its name or
        schema cannot be offered to a model."""
        schema = dict(info.input_schema or {})
        schema.pop("title", None)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        description = info.description or info.title or f"{info.name} (a tool of the MCP server {connection.name})"
        try:
            spec = ToolSpec(name=info.name, description=description.strip(), parameters=schema)
        except ValueError as exc:
            log.warning("MCP server %r: skipping its tool %r, which cannot be offered to a model: %s",
                        connection.name, info.name, exc)
            return None
        connection.tool_names.append(info.name)
        return cls(connection, spec)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def server(self) -> str:
        """The name of the MCP server (``tools.mcp[].name``) that has this tool."""
        return self._connection.name

    def call(self, arguments: dict[str, Any]) -> str:
        """Call the tool on its server; the result as text (text content joined; structured
        content as JSON when there is no text). Raises :class:`McpToolError` for an
        ``isError`` result, :class:`McpServerGone` when the server is gone, :class:`McpTimeout`
        after the server's ``timeout_s``."""
        return self._connection.call(self._spec.name, arguments)

    def close(self) -> None:
        """Close the server's session (and stop its subprocess); every tool of the server
        shares it, so this closes them all. Idempotent."""
        self._connection.close()

    def __repr__(self) -> str:
        return f"McpTool({self._spec.name!r}, server={self.server!r})"


class _StderrTail:
    """A stdio server's stderr: a pipe read by a daemon thread, the last lines kept (and
    logged at debug level)."""

    def __init__(self, server: str) -> None:
        read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "w")
        """The write end, given to the subprocess; closed here once it is started."""
        self._server = server
        self._lines: deque[str] = deque(maxlen=_STDERR_LINES)
        self._lock = threading.Lock()
        self._eof = threading.Event()
        threading.Thread(target=self._read, args=(read_fd,), name=f"mcp-{server}-stderr", daemon=True).start()

    def _read(self, fd: int) -> None:
        try:
            with open(fd, "rb") as pipe:
                for raw in pipe:
                    line = raw.decode("utf-8", errors="replace").rstrip()
                    if line:
                        log.debug("MCP server %r: %s", self._server, line)
                        with self._lock:
                            self._lines.append(line)
        except OSError:
            pass
        finally:
            self._eof.set()

    def close_write(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass

    def tail(self, lines: int = 5, wait_s: float = 0.0) -> str:
        """The last ``lines`` lines, after waiting up to ``wait_s`` for the server to close
        its stderr (it has exited: what it wrote last is then read)."""
        if wait_s:
            self._eof.wait(wait_s)
        with self._lock:
            return "\n".join(list(self._lines)[-lines:])


class _Connection:
    """One server's session, held open by an event loop in its own daemon thread."""

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self.name = config.name
        self.tool_names: list[str] = []
        self._stderr = _StderrTail(config.name) if config.command is not None else None
        self._connected: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        self._portal: Any = None  # anyio.from_thread.BlockingPortal, set in the loop
        self._scope: Any = None  # the anyio.CancelScope around the session
        self._stop: Any = None  # anyio.Event: leave the session cleanly
        self._session: Any = None  # the connected mcp.Client, used in the loop only
        self._lock = threading.Lock()
        self._gone: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"mcp-{config.name}", daemon=True)

    # ---- the caller's side (any thread) ---------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wait_connected(self) -> list[Any]:
        """The server's tools (``mcp_types.Tool``) once connected; ConfigError if it fails."""
        try:
            return self._connected.result(timeout=self.config.timeout_s + _CLOSE_GRACE_S)
        except concurrent.futures.TimeoutError:
            raise ConfigError(self._cannot_connect(f"no answer within {self.config.timeout_s:g} s")) from None

    def call(self, tool: str, arguments: dict[str, Any]) -> str:
        gone = self._gone
        if gone is not None:
            raise McpServerGone(gone)
        try:
            future = self._portal.start_task_soon(self._call, tool, arguments)
        except RuntimeError:  # the loop has stopped since
            raise McpServerGone(self._gone or self._lost("stopped")) from None
        timeout = self.config.timeout_s
        try:
            result = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpTimeout(f"the MCP server {self.name!r} did not answer {tool} within {timeout:g} s "
                             "(tools.mcp[].timeout_s)") from None
        except concurrent.futures.CancelledError:  # the session ended under the call
            raise McpServerGone(self._gone or self._lost("closed the connection")) from None
        except McpToolError:
            raise
        except Exception as exc:
            if _connection_closed(exc):
                raise McpServerGone(self._lost("closed the connection (did it exit?)")) from None
            raise McpToolError(f"the MCP server {self.name!r} refused the call: {_describe(exc)}") from exc
        return _result_text(result)

    def close(self) -> None:
        """End the session (and the subprocess): cleanly if it ends within a few seconds, else
        cancelled; never waits more than about five seconds. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._gone is None:
                self._gone = f"the MCP server {self.name!r} was closed (the agent closed it)"
        if not self._thread.is_alive():
            return
        if self._connected.done() and self._stop is not None:
            self._in_loop(lambda: self._stop.set())
            self._thread.join(_CLOSE_GRACE_S)
        if self._thread.is_alive():
            self._in_loop(lambda: self._scope is not None and self._scope.cancel())
            self._thread.join(_CLOSE_FORCE_S)
        if self._thread.is_alive():
            log.warning("the MCP server %r did not stop within %g s; leaving its thread behind", self.name,
                        _CLOSE_GRACE_S + _CLOSE_FORCE_S)

    def _in_loop(self, fn: Callable[[], Any]) -> None:
        portal = self._portal
        if portal is None:
            return
        try:
            portal.start_task_soon(fn)
        except RuntimeError:  # the portal stopped: the loop is ending anyway
            pass

    def _lost(self, what: str) -> str:
        """Mark the server gone (once) and return why, with the end of its stderr."""
        with self._lock:
            if self._gone is not None:
                return self._gone
        tail = self._stderr.tail(wait_s=0.5) if self._stderr is not None else ""
        message = f"the MCP server {self.name!r} {what}"
        if tail:
            message += f"; its stderr ends: {tail}"
        message += "; its tools fail until the agent is restarted"
        with self._lock:
            if self._gone is None:
                self._gone = message
                log.error("%s", message)
            return self._gone

    def _where(self) -> str:
        if self.config.command is not None:
            return f"started with `{' '.join(self.config.command)}`"
        return f"at {self.config.url}"

    def _cannot_connect(self, why: str) -> str:
        if self.config.command is not None:
            message = f"cannot start the MCP server {self.name!r} ({self._where()}): {why}"
            tail = self._stderr.tail(lines=10, wait_s=1.0) if self._stderr is not None else ""
            if tail:
                message += "\nits stderr ends:\n  " + tail.replace("\n", "\n  ")
            return message + (f"\nfix tools.mcp (name: {self.name}): command must start an MCP server "
                              "speaking stdio (try running it by hand)")
        return (f"cannot reach the MCP server {self.name!r} at {self.config.url}: {why}\n"
                f"fix tools.mcp (name: {self.name}): is the server running, and is url its streamable-HTTP "
                "endpoint (often ending in /mcp)?")

    # ---- the loop's side -------------------------------------------------------------------
    def _run(self) -> None:
        import anyio

        try:
            anyio.run(self._main)
        except BaseException as exc:  # the loop itself failed; nothing may escape a thread silently
            log.exception("the event loop of the MCP server %r failed", self.name)
            self._fail_connect(exc)
            self._lost(f"failed: {_describe(exc)}")
        finally:
            if self._stderr is not None:
                self._stderr.close_write()

    def _fail_connect(self, exc: BaseException) -> None:
        if not self._connected.done():
            why = ("it closed the connection before answering (did it exit? is it an MCP server speaking stdio?)"
                   if _connection_closed(exc) else _describe(exc))
            self._connected.set_exception(ConfigError(self._cannot_connect(why)))

    async def _main(self) -> None:
        import anyio
        from anyio.from_thread import BlockingPortal

        async with BlockingPortal() as portal:
            self._stop = anyio.Event()
            self._portal = portal
            connected = False
            try:
                with anyio.CancelScope(deadline=anyio.current_time() + self.config.timeout_s) as scope:
                    self._scope = scope
                    async with self._client() as client:
                        if self._stderr is not None:
                            self._stderr.close_write()  # the server has it; its EOF now means it exited
                        tools = await _list_tools(client)
                        self._session = client
                        scope.deadline = math.inf
                        connected = True
                        self._connected.set_result(tools)
                        await self._stop.wait()
                if not connected:
                    why = "the agent closed it while connecting" if self._closed else \
                        f"no answer within {self.config.timeout_s:g} s (tools.mcp[].timeout_s)"
                    raise TimeoutError(why)
            except Exception as exc:
                if self._stderr is not None:
                    self._stderr.close_write()  # so that the stderr tail is complete once the server exits
                if connected:
                    self._lost(f"failed: {_describe(exc)}")
                else:
                    self._fail_connect(exc)
            finally:
                self._session = None
                await portal.stop(cancel_remaining=True)
        if self._stderr is not None:
            self._stderr.close_write()
        if connected and not self._closed:
            self._lost("ended the session")

    def _client(self) -> Any:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp_types import Implementation

        info = Implementation(name="llmos", version=_version())
        if self.config.command is not None:
            assert self._stderr is not None
            program, *args = self.config.command
            params = StdioServerParameters(command=program, args=list(args), env=dict(self.config.env) or None)
            return Client(stdio_client(params, errlog=self._stderr.file), read_timeout_seconds=self.config.timeout_s,
                          client_info=info, cache=None)
        assert self.config.url is not None
        return Client(self.config.url, read_timeout_seconds=self.config.timeout_s, client_info=info, cache=None)

    async def _call(self, tool: str, arguments: dict[str, Any]) -> Any:
        session = self._session
        if session is None:
            raise McpServerGone(self._gone or f"the MCP server {self.name!r} is not connected")
        return await session.call_tool(tool, arguments, read_timeout_seconds=self.config.timeout_s)


async def _list_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    for _ in range(100):  # a paginator that never ends cannot hang the start
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _result_text(result: Any) -> str:
    """A ``CallToolResult`` as the text the model reads; raises for ``isError``."""
    parts: list[str] = []
    for item in result.content:
        kind = getattr(item, "type", None)
        if kind == "text":
            parts.append(item.text)
        elif kind == "resource" and hasattr(item.resource, "text"):
            parts.append(item.resource.text)
        elif kind == "resource_link":
            parts.append(f"[resource {item.uri}]")
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(item, 'mime_type', '')}]".replace(" ]", "]"))
        elif kind == "resource":
            parts.append(f"[resource {item.resource.uri}]")
    if result.is_error:
        raise McpToolError("\n".join(parts) or "the tool reported an error without saying which")
    texts = [item.text for item in result.content if getattr(item, "type", None) == "text"]
    if not texts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False, default=str)
    return "\n".join(parts)


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)  # an exception group (the exceptiongroup backport on 3.10)
    if isinstance(inner, (list, tuple)) and inner:
        return [leaf for each in inner if isinstance(each, BaseException) for leaf in _leaves(each)]
    return [exc]


def _connection_closed(exc: BaseException) -> bool:
    """The SDK's error for a request whose connection closed (the server exited or hung up)."""
    return any(getattr(leaf, "code", None) == _CONNECTION_CLOSED for leaf in _leaves(exc))


def _describe(exc: BaseException) -> str:
    """An exception as one line; exception groups as their leaves."""
    texts = []
    for leaf in _leaves(exc):
        text = str(leaf).strip()
        texts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
    return "; ".join(dict.fromkeys(texts))


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("llmos")
    except metadata.PackageNotFoundError:
        return "0"
