"""Tools from MCP servers (``skills.mcp``): a real server (``tests/helpers/scripts/mcp_server.py``,
written with the SDK's ``MCPServer``) runs as a subprocess over stdio, or over streamable HTTP
on a free loopback port; the agent lists its tools, calls them, survives its death and stops it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from agent.errors import ConfigError  # noqa: E402
from agent.toolcalls import ToolCall  # noqa: E402
from skills.config import McpServerConfig  # noqa: E402
from skills.mcp import McpServerGone, McpTool, mcp_tools  # noqa: E402
from skills.tools import run_tool  # noqa: E402

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
SERVER = str(ROOT / "tests" / "helpers" / "scripts" / "mcp_server.py")


def stdio(name: str = "demo", *args: str, timeout_s: float = 10.0) -> McpServerConfig:
    return McpServerConfig(name=name, command=(sys.executable, SERVER, *args), timeout_s=timeout_s)


def close_all(tools: dict[str, McpTool]) -> None:
    for found in tools.values():
        found.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def shared_tools():
    """One stdio server for the tests that leave it healthy."""
    tools = mcp_tools([stdio()])
    yield tools
    close_all(tools)


@pytest.fixture
def own_tools():
    """A stdio server of the test's own (to kill, hang or close): ``own_tools(**config)``."""
    made: list[dict[str, McpTool]] = []

    def make(**kwargs) -> dict[str, McpTool]:
        made.append(mcp_tools([stdio("own", **kwargs)]))
        return made[-1]

    yield make
    for tools in made:
        close_all(tools)


def test_a_stdio_servers_tools_come_with_their_typed_schemas(shared_tools):
    assert {"add", "echo", "weather", "fail", "pid", "sleep", "die"} <= set(shared_tools)
    add = shared_tools["add"]
    assert add.server == "demo"
    assert add.spec.description == "Add two integers."
    params = add.spec.parameters
    assert params["type"] == "object" and params["required"] == ["a"]
    assert params["properties"]["a"]["type"] == "integer"
    assert params["properties"]["b"] == {"default": 1, "description": "the second number", "title": "B",
                                         "type": "integer"}
    assert shared_tools["sleep"].spec.parameters["properties"]["seconds"]["type"] == "number"
    assert add.spec.openai()["function"]["name"] == "add"


def test_calls_return_the_servers_text(shared_tools):
    assert shared_tools["add"].call({"a": 2, "b": 40}) == "42"
    assert shared_tools["echo"].call({"text": "hi", "times": 3}) == "hi hi hi"
    assert json.loads(shared_tools["weather"].call({"city": "Oslo"})) == {"city": "Oslo", "celsius": 21.5,
                                                                         "sky": "clear"}
    result = run_tool(shared_tools, ToolCall(name="add", arguments={"a": 1}))
    assert result.ok and result.content == "2"


def test_calls_from_several_threads_share_the_session(shared_tools):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda n: shared_tools["add"].call({"a": n, "b": 100}), range(12)))
    assert answers == [str(n + 100) for n in range(12)]


def test_an_is_error_result_becomes_an_error_result(shared_tools):
    result = run_tool(shared_tools, ToolCall(name="fail", arguments={"message": "the printer is on fire"}))
    assert not result.ok
    assert result.content.startswith("error: fail failed: McpToolError: ")
    assert "the printer is on fire" in result.content
    refused = run_tool(shared_tools, ToolCall(name="add", arguments={"a": "many"}))
    assert not refused.ok and "valid integer" in refused.content
    assert shared_tools["add"].call({"a": 1, "b": 1}) == "2"  # the session is still fine


def test_a_server_that_dies_mid_call_fails_that_call_and_the_next_fast(own_tools):
    tools = own_tools()
    started = time.monotonic()
    died = run_tool(tools, ToolCall(name="die"), timeout_s=30)
    assert time.monotonic() - started < 3
    assert not died.ok and "McpServerGone" in died.content
    assert "closed the connection (did it exit?)" in died.content
    assert "dying on purpose" in died.content  # the end of the server's stderr
    started = time.monotonic()
    later = run_tool(tools, ToolCall(name="add", arguments={"a": 1}), timeout_s=30)
    assert time.monotonic() - started < 0.5
    assert not later.ok and "closed the connection" in later.content
    with pytest.raises(McpServerGone):
        tools["echo"].call({"text": "anyone?"})


def test_close_stops_the_subprocess(own_tools):
    tools = own_tools()
    pid = int(tools["pid"].call({}))
    assert alive(pid)
    started = time.monotonic()
    close_all(tools)  # every tool of the server closes it; all but the first do nothing
    assert time.monotonic() - started < 3
    assert gone_within(pid, 2)
    with pytest.raises(McpServerGone, match="was closed"):
        tools["add"].call({"a": 1})
    assert not [t for t in threading.enumerate() if t.name.startswith("mcp-own")]  # its threads ended


def test_a_hung_server_times_out_and_does_not_hold_up_close(own_tools):
    tools = own_tools(timeout_s=3)  # to start, and for each call
    pid = int(tools["pid"].call({}))
    started = time.monotonic()
    slow = run_tool(tools, ToolCall(name="sleep", arguments={"seconds": 30}), timeout_s=10)
    assert 2.9 < time.monotonic() - started < 5
    assert not slow.ok and "McpTimeout" in slow.content and "within 3 s" in slow.content
    assert tools["add"].call({"a": 1}) == "2"  # the server still serves other calls
    started = time.monotonic()
    close_all(tools)  # the server is still sleeping in its tool
    assert time.monotonic() - started < 6
    assert gone_within(pid, 3)


@pytest.fixture
def http_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the HTTP MCP server did not start (exit code {process.poll()})")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_streamable_http_server(http_server):
    url, process = http_server
    tools = mcp_tools([McpServerConfig(name="remote", url=url, timeout_s=10)])
    try:
        assert tools["add"].spec.parameters["properties"]["a"]["type"] == "integer"
        assert tools["add"].call({"a": 20, "b": 22}) == "42"
        failed = run_tool(tools, ToolCall(name="fail", arguments={"message": "no such order"}))
        assert not failed.ok and "no such order" in failed.content
        started = time.monotonic()
        died = run_tool(tools, ToolCall(name="die"), timeout_s=30)
        assert not died.ok and "McpServerGone" in died.content
        later = run_tool(tools, ToolCall(name="add", arguments={"a": 1}), timeout_s=30)
        assert not later.ok and "McpServerGone" in later.content
        assert time.monotonic() - started < 3
        assert process.wait(timeout=5) == 1
    finally:
        close_all(tools)


def test_a_server_that_cannot_start_is_a_config_error_with_its_stderr():
    with pytest.raises(ConfigError) as failed:
        mcp_tools([stdio("broken", "--fail-at-start")])
    message = str(failed.value)
    assert "cannot start the MCP server 'broken'" in message and "--fail-at-start" in message
    assert "the API key TEST_KEY is not set" in message
    with pytest.raises(ConfigError, match="nosuch-mcp-server.*No such file"):
        mcp_tools([McpServerConfig(name="missing", command=("nosuch-mcp-server", "--stdio"))])


def test_a_server_that_never_answers_is_a_config_error_in_time():
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"no answer within 1 s"):
        mcp_tools([McpServerConfig(name="mute", command=(sys.executable, "-c", "import time; time.sleep(60)"),
                                   timeout_s=1)])
    assert time.monotonic() - started < 8


def test_an_unreachable_url_is_a_config_error():
    with socket.socket() as probe:  # a free port, nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"cannot reach the MCP server 'remote' at http://127.0.0.1:{port}/mcp"):
        mcp_tools([McpServerConfig(name="remote", url=f"http://127.0.0.1:{port}/mcp", timeout_s=5)])


def test_two_servers_with_a_tool_of_the_same_name_are_a_config_error():
    with pytest.raises(ConfigError, match=r"'one' and 'two' both have a tool named 'add'"):
        mcp_tools([stdio("one"), stdio("two")])
    assert not [t for t in threading.enumerate() if t.name in ("mcp-one", "mcp-two")]  # both closed again
    tools = mcp_tools([stdio("one"), stdio("two", "--prefix", "b_")])  # distinct names: both serve
    try:
        assert tools["add"].server == "one" and tools["b_add"].server == "two"
        assert tools["b_add"].call({"a": 1, "b": 2}) == "3"
    finally:
        close_all(tools)


def test_the_module_imports_without_the_sdk_and_says_how_to_install_it():
    script = ("import sys; sys.modules['mcp'] = None\n"
              "import skills.mcp as m\n"
              "from skills.config import McpServerConfig\n"
              "try:\n"
              "    m.mcp_tools([McpServerConfig(name='x', command=['x'])])\n"
              "except Exception as exc:\n"
              "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ConfigError MCP servers need the mcp package: pip install 'llmos[mcp]'"


def test_the_agent_calls_an_mcp_tool_in_a_turn(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    config = fake_config(tools={"mcp": [{"name": "demo", "command": [sys.executable, SERVER]}]})
    backend = FakeBackend([ToolCall(name="add", arguments={"a": 2, "b": 40}), "final answer"])
    agent = Agent(config, backend=backend, skills={})
    try:
        pid = int(agent.tools["pid"].call({}))
        reply = agent.chat("what is 2 + 40?")
        assert reply.text == "final answer"
        assert [(r.name, r.arguments, r.result, r.ok) for r in reply.tool_calls] == [
            ("add", {"a": 2, "b": 40}, "42", True)]
        assert "add" in {t.name for t in backend.history[0].tools}
        tool_messages = [m for m in backend.history[1].messages if m["role"] == "tool"]
        assert [(m["name"], m["content"]) for m in tool_messages] == [("add", "42")]
    finally:
        agent.close()
    assert gone_within(pid, 3)
