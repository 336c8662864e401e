"""llmos's own server as the OpenAI-compatible upstream of a second llmos agent, over
loopback, streaming included: the same `openai` backend that points an agent at
`vllm serve MODEL --tensor-parallel-size N`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import Agent
from agent.backends.openai import OpenAIBackend


def test_a_second_agent_uses_the_server_as_its_model(make_app, serve, fake_config):
    upstream_app, upstream, upstream_backend = make_app()
    with serve(upstream_app) as url:
        backend = OpenAIBackend(f"{url}/v1", "fake", api_key="unused")
        downstream = Agent(fake_config(model={"backend": "openai", "name": "fake", "base_url": f"{url}/v1"},
                                       data_dir=str(upstream.config.data_dir) + "-down"), backend=backend)
        try:
            first = downstream.stream("Where is the Louvre?", user_id="zoe")
            pieces = list(first)
            assert "".join(pieces) == "You said: Where is the Louvre?" and len(pieces) > 1
            second = downstream.chat("And the Prado?", user_id="zoe", session_id=first.session_id)
        finally:
            downstream.close()
    assert second.text == "You said: And the Prado?"
    assert second.tokens.completion == 5  # reported by the upstream's usage chunk
    # The upstream saw the downstream agent's prompt as it was: its persona and history.
    sent = upstream_backend.history[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "llmos" in sent[0]["content"]
    assert upstream.sessions("local") == []  # plain model calls: stateless upstream


def test_a_second_agent_can_use_the_upstream_agent_pipeline(make_app, serve, fake_config):
    upstream_app, upstream, _ = make_app(["From the upstream agent."])
    with serve(upstream_app) as url:
        downstream = Agent(fake_config(data_dir=str(upstream.config.data_dir) + "-down"),
                           backend=OpenAIBackend(f"{url}/v1", "llmos"))
        try:
            reply = downstream.stream("hello", user_id="zoe")
            text = "".join(reply)
        finally:
            downstream.close()
    assert text == "From the upstream agent."
    assert len(upstream.sessions("local")) == 1


def test_the_vllm_example_config_serves_through_an_upstream(make_app, serve, tmp_path):
    """examples/vllm.yaml as it ships, with its upstream swapped for a local llmos server
    standing in for vLLM: openai client -> llmos front end -> OpenAI-compatible upstream."""
    import openai

    from agent.config import load_config
    from agent.server import build_served_agent, create_app

    upstream_app, _, upstream_backend = make_app(["Your order ships today."])
    example = Path(__file__).resolve().parents[2] / "examples" / "vllm.yaml"
    with serve(upstream_app) as upstream:
        config = load_config(example, environ={}, overrides={
            "model": {"base_url": f"{upstream}/v1", "name": "fake"}, "memory": {"enabled": False},
            "understanding": {"enabled": False}, "data_dir": str(tmp_path / "front"),
            "server": {"webhook": {"url": None}}})
        front_agent = build_served_agent(config)
        try:
            with serve(create_app(front_agent)) as front:
                client = openai.OpenAI(base_url=f"{front}/v1", api_key="replace-me-with-llmos-serve-key",
                                       max_retries=0)
                stream = client.chat.completions.create(model="support-bot", user="cust-1", stream=True,
                                                        messages=[{"role": "user", "content": "Where is my order?"}])
                text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                with pytest.raises(openai.AuthenticationError):
                    openai.OpenAI(base_url=f"{front}/v1", api_key="wrong", max_retries=0).models.list()
        finally:
            front_agent.close()
    assert text == "Your order ships today."
    assert upstream_backend.history[-1].options.max_new_tokens == 512  # the example's generation settings
    assert "support" in upstream_backend.history[-1].messages[0]["content"].lower()
