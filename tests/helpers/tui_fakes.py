"""A fake Agent with exactly the surface the terminal UI uses (see tui.types.AgentLike).

Replies are scripted (``enqueue``) or echo the input; ``stream`` yields pieces with a small
sleep, honours ``cancel()``, and can be told to raise before or during a reply. Sessions,
history and memories live in dicts; timestamps come from a counter so screenshots are stable.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, ModelConfig
from agent.errors import InputError, MemoryStoreError
from agent.turn import Label, MemoryRef, Reply, TokenCounts

EPOCH = datetime(2025, 1, 1, 12, 0, 0)


@dataclass
class SessionInfo:
    id: str
    title: str | None
    user_id: str
    created_at: datetime
    updated_at: datetime
    turns: int = 0


@dataclass
class Message:
    role: str
    content: str
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Script:
    """One scripted reply: its pieces and what it reports."""

    pieces: list[str]
    skill: str | None = None
    intent: tuple[str, float] = ("chitchat", 0.91)
    sentiment: tuple[str, float] = ("neutral", 0.12)
    frustration: float = 0.05
    memories: list[MemoryRef] = field(default_factory=list)
    fail_after: int | None = None
    """Raise ``error`` after this many pieces."""
    error: Exception | None = None
    handoff: bool = False
    progress: list[tuple[float, str]] = field(default_factory=list)
    """(fraction, message) reported before the first piece, as a long skill does."""


def split_pieces(text: str) -> list[str]:
    """Split like a tokenizer would: words with their leading space, newlines kept."""
    pieces: list[str] = []
    for index, word in enumerate(text.split(" ")):
        pieces.append(word if index == 0 else " " + word)
    return [piece for piece in pieces if piece]


class FakeTurnStream:
    def __init__(self, agent: FakeAgent, text: str, session: SessionInfo, user_id: str, script: Script,
                 progress: Any = None) -> None:
        self._agent = agent
        self._progress = progress
        self._text = text
        self._session = session
        self._user_id = user_id
        self._script = script
        self._cancel = threading.Event()
        self.session_id = session.id
        self.reply: Reply | None = None

    def cancel(self) -> None:
        self._cancel.set()

    def __iter__(self) -> Iterator[str]:
        agent, script = self._agent, self._script
        started = time.perf_counter()
        produced: list[str] = []
        finish = "stop"
        for fraction, what in script.progress:
            if self._progress is not None:
                self._progress(fraction, what)
        for index, piece in enumerate(script.pieces):
            agent._take(self._cancel)
            if self._cancel.is_set():
                finish = "cancelled"
                break
            if script.fail_after is not None and index == script.fail_after:
                raise script.error or RuntimeError("backend exploded")
            if agent.delay:
                time.sleep(agent.delay)
            produced.append(piece)
            yield piece
        if self._cancel.is_set():
            finish = "cancelled"
        text = "".join(produced)
        self.reply = Reply(
            text=text, session_id=self.session_id, user_id=self._user_id,
            intent=Label(label=script.intent[0], score=script.intent[1]),
            sentiment=Label(label=script.sentiment[0], score=script.sentiment[1]),
            frustration=script.frustration, skill=script.skill, memories=list(script.memories),
            handoff=script.handoff,
            timings_ms={"understand": 4.0, "recall": 2.5, "generate": 250.0, "total": 260.0},
            tokens=TokenCounts(prompt=42, completion=len(produced)), finish_reason=finish,
        )
        _ = started
        agent._persist(self._session, self._text, self.reply)
        if self.reply.handoff:
            for hook in agent.on_handoff:
                hook(self.reply)


class FakeAgent:
    """Implements the Agent API surface the UI needs (see the module docstring)."""

    def __init__(self, *, delay: float = 0.0, model_name: str = "fake-model", memory: bool = True) -> None:
        self.delay = delay
        self.model_name = model_name
        self.config = AgentConfig(name="llmos", model=ModelConfig(backend="fake", name=model_name))
        self.memory_enabled = memory
        self.scripts: deque[Script] = deque()
        self.reject: dict[str, Exception] = {}
        """Text -> error that ``stream`` raises before anything happens (like InputError)."""
        self._budget: int | None = None
        self._budget_changed = threading.Condition()
        self.calls: list[tuple[str, str | None]] = []
        self.documents: list[str] = []
        self.on_handoff: list[Any] = []
        """Called with the Reply of a turn that hands off, like Agent.on_handoff."""
        self.closed = False
        self._sessions: dict[str, SessionInfo] = {}
        self._history: dict[str, list[Message]] = {}
        self._memories: dict[int, MemoryRef] = {}
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)

    # -- scripting -----------------------------------------------------------------------

    def enqueue(self, text: str | Sequence[str], **script: Any) -> Script:
        pieces = split_pieces(text) if isinstance(text, str) else list(text)
        item = Script(pieces=pieces, **script)
        self.scripts.append(item)
        return item

    def hold(self) -> None:
        """From now on each piece waits until :meth:`allow` lets it through."""
        with self._budget_changed:
            self._budget = 0

    def allow(self, pieces: int) -> None:
        with self._budget_changed:
            self._budget = (self._budget or 0) + pieces
            self._budget_changed.notify_all()

    def release(self) -> None:
        """Let every piece through again."""
        with self._budget_changed:
            self._budget = None
            self._budget_changed.notify_all()

    def _take(self, cancelled: threading.Event) -> None:
        with self._budget_changed:
            while self._budget == 0 and not cancelled.is_set():
                self._budget_changed.wait(0.01)
            if self._budget and not cancelled.is_set():
                self._budget -= 1

    def add_memory(self, text: str, kind: str = "fact", score: float = 0.8, source: str | None = None) -> MemoryRef:
        ref = MemoryRef(id=len(self._memories) + 1, text=text, score=score, kind=kind, source=source)
        self._memories[ref.id] = ref
        return ref

    def _tick(self) -> datetime:
        return EPOCH + timedelta(minutes=next(self._clock))

    # -- turns ---------------------------------------------------------------------------

    def stream(self, text: str, user_id: str = "local", session_id: str | None = None,
               progress: Any = None) -> FakeTurnStream:
        self.calls.append((text, session_id))
        if text in self.reject:
            raise self.reject[text]
        if not text.strip():
            raise InputError("the message is empty: type something first")
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            session = self.new_session(user_id=user_id)
        script = self.scripts.popleft() if self.scripts else Script(pieces=split_pieces(f"You said: {text}"))
        return FakeTurnStream(self, text, session, user_id, script, progress)

    def chat(self, text: str, user_id: str = "local", session_id: str | None = None) -> Reply:
        stream = self.stream(text, user_id=user_id, session_id=session_id)
        for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    def _persist(self, session: SessionInfo, text: str, reply: Reply) -> None:
        now = self._tick()
        history = self._history.setdefault(session.id, [])
        history.append(Message("user", text, now))
        history.append(Message("assistant", reply.text, now, reply.model_dump(mode="json")))
        session.turns += 1
        session.updated_at = now
        if not session.title:  # like the real store: the first message names the session
            session.title = " ".join(text.split())[:60]

    # -- sessions ------------------------------------------------------------------------

    def sessions(self, user_id: str = "local") -> list[SessionInfo]:
        found = [s for s in self._sessions.values() if s.user_id == user_id]
        return sorted(found, key=lambda s: s.updated_at, reverse=True)

    def new_session(self, user_id: str = "local", title: str | None = None) -> SessionInfo:
        now = self._tick()
        info = SessionInfo(id=f"s{next(self._ids)}", title=title, user_id=user_id, created_at=now, updated_at=now)
        self._sessions[info.id] = info
        self._history[info.id] = []
        return info

    def rename_session(self, session_id: str, title: str) -> None:
        self._sessions[session_id].title = title

    def delete_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._history.pop(session_id, None)

    def history(self, session_id: str) -> list[Message]:
        return list(self._history.get(session_id, []))

    # -- memory --------------------------------------------------------------------------

    def remember(self, user_id: str) -> list[MemoryRef]:
        return list(self._memories.values()) if self.memory_enabled else []

    def forget_memory(self, ids: Sequence[int]) -> None:
        for memory_id in ids:
            self._memories.pop(int(memory_id), None)

    def forget_user(self, user_id: str) -> None:
        self._memories.clear()

    def add_document(self, path: str, user_id: str | None = None) -> int:
        if not self.memory_enabled:
            raise MemoryStoreError("memory is disabled in this config: set memory.enabled: true")
        self.documents.append(path)
        text = Path(path).read_text(encoding="utf-8")
        return len([part for part in text.split("\n\n") if part.strip()])

    def close(self) -> None:
        self.closed = True
