"""Exporting llmos's conversation store as training data (``llmos export --format jsonl``).

Every session becomes one conversation in the OpenAI messages format, so a support
team can clean its own transcripts (``llmos data clean``) and fine-tune on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import InputError
from agent.toolbox.conversations import Conversation

if TYPE_CHECKING:
    from agent.dialogue.store import ConversationStore

__all__ = ["store_users", "export_store", "store_path_for"]


def store_path_for(config_path: str | None = None) -> Path:
    """Where the agent configured by ``config_path`` (or the defaults) keeps conversations."""
    from agent.config import load_config

    return load_config(config_path).resolved_data_dir() / "conversations.sqlite3"


def store_users(store: ConversationStore) -> list[str]:
    """Every user id in a :class:`~agent.dialogue.store.ConversationStore`, oldest first."""
    return store.users()


def export_store(path: str | Path, *, users: list[str] | None = None, system: str | None = None,
                 include_ids: bool = True, min_turns: int = 1) -> Iterator[Conversation]:
    """Yield the store's sessions as conversations, oldest session first per user.

    ``system`` prepends a system message (e.g. the persona the agent ran with);
    ``include_ids`` adds ``meta`` with the session and user ids; sessions with fewer than
    ``min_turns`` replies are skipped.
    """
    from agent.dialogue.store import ConversationStore

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"no conversation store at {path}: pass --store FILE or the --config of the agent "
                         "whose conversations you want")
    store = ConversationStore(path)
    try:
        for user in users or store_users(store):
            for session in reversed(store.sessions(user)):
                messages = [{"role": m.role, "content": m.content} for m in store.messages(session.id)]
                if sum(1 for m in messages if m["role"] == "assistant") < min_turns:
                    continue
                if system:
                    messages.insert(0, {"role": "system", "content": system})
                conv: Conversation = {"messages": messages}
                if include_ids:
                    conv["meta"] = {"session_id": session.id, "user_id": user, "title": session.title}
                yield conv
    finally:
        store.close()
