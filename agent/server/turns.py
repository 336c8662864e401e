"""How a chat-completions request becomes a turn of a stored session.

- ``session_id`` given: the user's session of that id; a new id creates it (ids are per
  user, :mod:`agent.server.session_ids`). The server's stored history is the context;
  earlier messages in the request are ignored.
- otherwise: the conversation before the last user message is looked up by digest
  (:mod:`agent.server.threads`); a hit continues that session, so an OpenAI client that
  resends the conversation each turn stays in one session. A miss starts a fresh session and
  imports the earlier user/assistant messages into it as context (marked ``imported``).
- ``system``/``developer`` messages are not stored: the agent's persona and instructions
  come from its config. ``tool`` messages are ignored.

A turn that fails leaves nothing behind: a session made for it (with the imported
messages) is removed again, so a retry does not find half a conversation.

The functions here block (SQLite, generation) and run on the worker pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.normalize import normalize_text
from agent.server.errors import ApiError
from agent.server.schemas import ChatMessage
from agent.server.session_ids import public_id, stored_id
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
    imported: bool = False
    """The session was made for this turn with the client's earlier messages."""

    @property
    def session_id(self) -> str:
        """The session's id as the client knows it."""
        return public_id(self.turn.session_id, self.user_id)

    def pieces(self, state: ServerState) -> Iterator[str]:
        """The turn's text; if it fails, the session made for it goes (see the module doc)."""
        try:
            yield from self.turn
        except Exception:
            if self.imported:
                _discard(state, self.turn.session_id)
            raise


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
    derived, imported, stored = session_id is None, False, None
    if session_id is not None:
        info = state.find_session(user_id, session_id)
        stored = info.id if info is not None else stored_id(user_id, session_id)  # new: the turn creates it
    else:
        clean = [(role, normalize_text(content, limit)) for role, content in history if content.strip()]
        if clean:
            found = state.index.find(user_id, conversation_digest(user_id, history))
            info = state.find_session(user_id, found) if found else None
            stored = info.id if info is not None else None
        if stored is None and clean:
            stored = agent.new_session(user_id).id
            imported = True
            try:
                unanswered = _import(state, stored, clean)
                if unanswered:  # user messages after the last reply belong to this turn
                    text = normalize_text("\n\n".join([*unanswered, text]), limit)
            except BaseException:
                _discard(state, stored)
                raise
    # stored None: the agent creates the session itself (one write transaction fewer)
    try:
        turn = agent.stream(text, user_id=user_id, session_id=stored)
    except BaseException:
        if imported:
            _discard(state, stored)
        raise
    return PreparedTurn(turn=turn, user_id=user_id, text=raw, history=history, derived=derived, imported=imported)


def _discard(state: ServerState, session_id: str | None) -> None:
    """Remove a session made for a turn that failed, unless a turn was stored in it since."""
    if session_id is None:
        return
    store = state.agent.store
    if all(m.meta.get("imported") for m in store.messages(session_id)):
        store.delete_session(session_id)
        state.index.forget_session(session_id)


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
    meta = reply.model_dump(mode="json", exclude={"text", "tokens"})
    meta["session_id"] = public_id(reply.session_id, reply.user_id)
    return meta


def openai_finish(reason: str | None) -> str:
    return reason if reason in ("length", "tool_calls") else "stop"

