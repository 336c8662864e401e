"""Agent.route: which skill a message would go to, decided as a turn decides it, with nothing
run or stored; and a turn cancelled before its generation starts cancels that generation."""

from __future__ import annotations

from collections.abc import Iterator


class _Echo:
    name, description, intents, command = "echo", "Echo the text", (), "echo"

    def run(self, request) -> Iterator[str]:
        yield request.text


def test_route_names_the_skill_without_running_or_storing_the_turn(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    backend = FakeBackend()
    agent = Agent(fake_config(), backend=backend, skills={"echo": _Echo()})
    try:
        assert agent.route("/echo hello") == "echo"
        assert agent.route("hello there") is None
        assert agent.route("/nosuchskill hi") is None
        assert agent.sessions("local") == [] and backend.history == []
        assert agent.chat("/echo hello").skill == "echo"  # the turn decides the same
    finally:
        agent.close()


def test_a_turn_cancelled_before_generation_cancels_it_at_once(fake_config):
    from agent import Agent
    from agent.backends import FakeBackend

    agent = Agent(fake_config(), backend=FakeBackend(["a b c d e f g h"]), skills={})
    try:
        turn = agent.stream("hello")
        turn.cancel()
        reply = turn.result()
        assert reply.finish_reason == "cancelled" and reply.text == ""
    finally:
        agent.close()
