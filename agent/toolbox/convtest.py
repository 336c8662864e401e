"""Scripted conversation tests (``llmos test CONVERSATIONS.yml``), like Rasa's test stories.

A file lists conversations; each is a sequence of user turns with expectations on what
the agent did. Every turn runs the full pipeline; the report gives pass/fail, latency and
tokens per turn.

.. code-block:: yaml

    conversations:
      - name: late order, then a human
        user: cust-42            # optional; each conversation gets a fresh user by default
        turns:
          - user: Where is my order 1234? It is late!
            expect:
              intent: order_status
              skill: order_status
              sentiment: negative
              contains: ["1234"]
              not_contains: ["as an AI"]
          - new_session: true    # later turns run in a fresh session of the same user
          - user: I want to talk to a person
            expect: {handoff: true, intent: human_handoff}
            memories_contain: ["1234"]
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.errors import ConfigError
from agent.turn import Reply

__all__ = ["ConversationSuite", "run_suite", "load_suite", "TurnResult"]


class ExpectedCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Each given argument must have this value (others may be present too)."""


class Expect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: str | None = None
    skill: str | None = None
    """A skill name, or the string ``none`` for plain chat."""
    sentiment: str | None = None
    handoff: bool | None = None
    contains: list[str] = Field(default_factory=list)
    """Each string must appear in the reply (case-insensitive)."""
    contains_any: list[str] = Field(default_factory=list)
    """At least one of these must appear (case-insensitive)."""
    not_contains: list[str] = Field(default_factory=list)
    memories_contain: list[str] = Field(default_factory=list)
    """Each string must appear in some recalled memory's text."""
    memories_not_contain: list[str] = Field(default_factory=list)
    tool_calls: list[ExpectedCall] | None = None
    """The tools the turn called, in order, each with (at least) these arguments; ``[]``: none."""


class ScriptTurn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str | None = None
    new_session: bool = False
    expect: Expect = Expect()

    @model_validator(mode="after")
    def _one_kind(self) -> ScriptTurn:
        if (self.user is None) == (not self.new_session):
            raise ValueError("a turn is either `user: TEXT` (with optional `expect`) or `new_session: true`")
        return self


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    user: str | None = None
    turns: list[ScriptTurn]


class ConversationSuite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conversations: list[Conversation]


class TurnResult(BaseModel):
    conversation: str
    turn: int
    text: str
    reply: str
    passed: bool
    failures: list[str]
    latency_ms: float
    tokens: int
    intent: str | None = None
    skill: str | None = None
    handoff: bool = False


def load_suite(path: str | Path) -> ConversationSuite:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"conversation file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ConversationSuite.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None


def check(reply: Reply, expect: Expect) -> list[str]:
    """What the reply got wrong, as readable sentences (empty when it passed)."""
    failures: list[str] = []
    got_intent = reply.intent.label if reply.intent else None
    if expect.intent is not None and got_intent != expect.intent:
        failures.append(f"intent: expected {expect.intent}, got {got_intent}")
    if expect.skill is not None and (reply.skill or "none") != expect.skill:
        failures.append(f"skill: expected {expect.skill}, got {reply.skill or 'none'}")
    got_sentiment = reply.sentiment.label if reply.sentiment else None
    if expect.sentiment is not None and got_sentiment != expect.sentiment:
        failures.append(f"sentiment: expected {expect.sentiment}, got {got_sentiment}")
    if expect.handoff is not None and reply.handoff != expect.handoff:
        failures.append(f"handoff: expected {expect.handoff}, got {reply.handoff}")
    text = reply.text.lower()
    failures += [f"reply does not contain {s!r}" for s in expect.contains if s.lower() not in text]
    if expect.contains_any and not any(s.lower() in text for s in expect.contains_any):
        failures.append(f"reply contains none of {expect.contains_any!r}")
    failures += [f"reply contains {s!r}" for s in expect.not_contains if s.lower() in text]
    memories = " ".join(m.text.lower() for m in reply.memories)
    failures += [f"no recalled memory contains {s!r}" for s in expect.memories_contain if s.lower() not in memories]
    failures += [f"a recalled memory contains {s!r}" for s in expect.memories_not_contain if s.lower() in memories]
    if expect.tool_calls is not None:
        got = [(c.name, c.arguments) for c in reply.tool_calls]
        ok = len(got) == len(expect.tool_calls) and all(
            name == want.name and all(args.get(k) == v for k, v in want.arguments.items())
            for (name, args), want in zip(got, expect.tool_calls, strict=False))
        if not ok:
            failures.append(f"tool calls: expected {[(c.name, c.arguments) for c in expect.tool_calls]}, got {got}")
    return failures


def run_suite(agent: Any, suite: ConversationSuite,
              on_result: Callable[[TurnResult], None] | None = None) -> list[TurnResult]:
    """Run every conversation against ``agent``; returns one result per user turn."""
    results: list[TurnResult] = []
    for conversation in suite.conversations:
        user = conversation.user or f"test-{uuid.uuid4().hex[:8]}"
        session: str | None = None
        number = 0
        for step in conversation.turns:
            if step.new_session:
                session = None
                continue
            number += 1
            assert step.user is not None
            started = time.perf_counter()
            reply = agent.chat(step.user, user_id=user, session_id=session)
            session = reply.session_id
            failures = check(reply, step.expect)
            result = TurnResult(conversation=conversation.name, turn=number, text=step.user, reply=reply.text,
                                passed=not failures, failures=failures,
                                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                                tokens=reply.tokens.completion,
                                intent=reply.intent.label if reply.intent is not None else None,
                                skill=reply.skill, handoff=reply.handoff)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
