"""Fixtures for the server tests: an app around a fake agent, and a live uvicorn server on a
free loopback port (for the openai client, streaming, disconnects and load)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.server import live_server


@pytest.fixture
def make_app(fake_config):
    """``make_app(replies=(), delay=0.0, agent_kwargs={}, **config_overrides) -> (app, agent, backend)``."""
    from agent import Agent
    from agent.backends import FakeBackend
    from agent.server import create_app

    agents = []

    def make(replies=(), *, delay: float = 0.0, agent_kwargs: dict[str, Any] | None = None, **overrides):
        backend = FakeBackend(replies, delay=delay)
        agent = Agent(fake_config(**overrides), backend=backend, **(agent_kwargs or {}))
        agents.append(agent)
        return create_app(agent), agent, backend

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def client_for():
    """A TestClient that looks like a loopback client (or ``host``)."""
    from fastapi.testclient import TestClient

    clients = []

    def make(app, host: str = "127.0.0.1"):
        client = TestClient(app, client=(host, 50000), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def serve():
    """``with serve(app) as url:`` a live server for the test."""
    return live_server
