"""A small MCP server for the tests of ``skills.mcp``, written with the SDK's ``MCPServer``.

::

    python tests/helpers/scripts/mcp_server.py                   # stdio
    python tests/helpers/scripts/mcp_server.py --http PORT       # streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/helpers/scripts/mcp_server.py --fail-at-start   # writes to stderr and exits 3

Tools: ``add`` (typed, structured output), ``echo``, ``weather`` (a dict), ``fail`` (an
``isError`` result), ``pid`` (the server's process id), ``sleep`` and ``die`` (the process
exits mid-call, as a crashing server would). ``--prefix P`` puts ``P`` before every tool name.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field


def build(prefix: str = "") -> MCPServer:
    server: MCPServer = MCPServer("llmos-test", log_level="WARNING")

    @server.tool(name=f"{prefix}add", description="Add two integers.")
    def add(a: int, b: Annotated[int, Field(description="the second number")] = 1) -> int:
        return a + b

    @server.tool(name=f"{prefix}echo", description="Repeat a text.")
    def echo(text: str, times: int = 1) -> str:
        return " ".join([text] * times)

    @server.tool(name=f"{prefix}weather", description="The weather in a city.")
    def weather(city: str) -> dict[str, object]:
        return {"city": city, "celsius": 21.5, "sky": "clear"}

    @server.tool(name=f"{prefix}fail", description="Always fails with the given message.")
    def fail(message: str) -> str:
        raise ToolError(message)

    @server.tool(name=f"{prefix}pid", description="The server's process id.")
    def pid() -> int:
        return os.getpid()

    @server.tool(name=f"{prefix}sleep", description="Sleep, then answer.")
    def sleep(seconds: float) -> str:
        time.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool(name=f"{prefix}die", description="The server process exits mid-call.")
    def die() -> str:
        sys.stderr.write("the test server is dying on purpose\n")
        sys.stderr.flush()
        os._exit(1)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--fail-at-start", action="store_true")
    args = parser.parse_args()
    if args.fail_at_start:
        sys.stderr.write("llmos-test: cannot start: the API key TEST_KEY is not set\n")
        sys.exit(3)
    server = build(args.prefix)
    if args.http is not None:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
