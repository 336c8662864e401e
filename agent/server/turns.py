"""How a chat-completions request becomes a turn of a stored session.

- ``session_id`` given: that session (it must belong to the user; a new id creates it). The
  server's stored history is the context; earlier messages in the request are ignored.
- otherwise: the conversation before the last user message is looked up by digest
  (:mod:`agent.server.threads`); a hit continues that session, so an OpenAI client that
  resends the conversation each turn stays in one session. A miss starts a fresh session and
  imports the earlier user/assistant messages into it as context (marked ``imported``).
- ``system``/``developer`` messages are not stored: the agent's persona and instructions
  come from its config. ``tool`` messages are ignored.

The functions here block (SQLite, generation) and run on the worker pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.normalize import normalize_text
from agent.server.errors import ApiError
from agent.server.schemas import ChatMessage
from agent.server.threads import conversation_digest
from agent.turn import Reply

if TYPE_CHECKING:
    from agent.dialogue import TurnStream
    from agent.server.state import ServerState

__all__ = ["PreparedTurn", "split_conversation", "prepare_turn", "finish_turn", "reply_meta", "openai_finish"]

_IMPORTED = {"imported": True}


@dataclass
class PreparedTurn:
    turn: TurnStream
    user_id: str
    text: str
    """The last user message as the client sent it (for the conversation digest)."""
    history: list[tuple[str, str]]
    derived: bool
    """True when the session was found or started from the conversation (not named)."""


def split_conversation(messages: list[ChatMessage]) -> tuple[list[tuple[str, str]], str]:
    """(earlier user/assistant turns, the last user message's text)."""
    if messages[-1].role != "user":
        raise ApiError(400, "the last message must have role 'user': it is the turn the agent answers",
                       param="messages")
    turns: list[tuple[str, str]] = [(m.role, m.text()) for m in messages[:-1] if m.role in ("user", "assistant")]
    return turns, messages[-1].text()


def prepare_turn(state: ServerState, user_id: str, session_id: str | None, history: list[tuple[str, str]],
                 text: str) -> PreparedTurn:
    """Resolve the session and start the turn (nothing is stored for rejected input)."""
    agent = state.agent
    limit = agent.config.max_input_chars
    raw = text
    text = normalize_text(text, limit)  # reject bad input before any session is created
    derived = session_id is None
    if session_id is not None:
        info = state.session_info(session_id)
        if info is not None and info.user_id != user_id:
            raise ApiError(404, f"no session {session_id!r} for user {user_id!r}", param="session_id")
    else:
        clean = [(role, normalize_text(content, limit)) for role, content in history if content.strip()]
        if clean:
            found = state.index.find(user_id, conversation_digest(user_id, history))
            info = state.session_info(found) if found else None
            if info is not None and info.user_id == user_id:
                session_id = info.id
        if session_id is None and clean:
            session_id = agent.new_session(user_id).id
            unanswered = _import(state, session_id, clean)
            if unanswered:  # user messages after the last reply belong to this turn
                text = normalize_text("\n\n".join([*unanswered, text]), limit)
    # session_id None: the agent creates the session itself (one write transaction fewer)
    turn = agent.stream(text, user_id=user_id, session_id=session_id)
    return PreparedTurn(turn=turn, user_id=user_id, text=raw, history=history, derived=derived)


def _import(state: ServerState, session_id: str, history: list[tuple[str, str]]) -> list[str]:
    """Store the client's earlier messages as the session's first turns (context only:
    they are not added to memory); returns the user messages after the last reply."""
    pending: list[str] = []
    for role, content in history:
        if role == "user":
            pending.append(content)
            continue
        state.agent.store.add_turn(session_id, "\n\n".join(pending), content, user_meta=_IMPORTED,
                                   reply_meta=_IMPORTED)
        pending = []
    return pending


def finish_turn(state: ServerState, prepared: PreparedTurn) -> Reply:
    """After the last piece: remember where this conversation continues."""
    reply = prepared.turn.reply
    assert reply is not None
    if prepared.derived and reply.finish_reason != "cancelled":
        turns = [*prepared.history, ("user", prepared.text), ("assistant", reply.text)]
        state.index.record(prepared.user_id, conversation_digest(prepared.user_id, turns), reply.session_id)
    return reply


def reply_meta(reply: Reply) -> dict[str, Any]:
    """The ``llmos`` field: everything the pipeline learnt, without the text."""
    return reply.model_dump(mode="json", exclude={"text", "tokens"})


def openai_finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"

