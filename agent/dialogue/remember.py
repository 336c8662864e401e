"""What the agent remembers, and forgetting it.

The built-in ``memory`` skill answers "what do you remember about me?" from the store: it
lists what is stored rather than asking the model to paraphrase it, so users see exactly
what the agent keeps about them (and can delete it with ``/forget`` or ``llmos memory
forget``). :func:`delete_session` removes a conversation with everything that came from it;
the Python API, the CLI, the TUI and the server all delete sessions through it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from agent.turn import MemoryBackend, MemoryRef
from skills.base import SkillRequest

if TYPE_CHECKING:
    from agent.dialogue.store import ConversationStore

__all__ = ["RememberSkill", "asks_what_is_remembered", "delete_session"]


def delete_session(store: ConversationStore, memory: MemoryBackend | None, session_id: str) -> int:
    """Delete a session: its messages, its running summary, and the memories that came from
    it; return how many memories went. The memories go first, so a crash in between leaves a
    session the user can delete again, never memories that no session leads to."""
    removed = 0
    if memory is not None and store.session_exists(session_id):
        removed = memory.forget_session(store.get_session(session_id).user_id, session_id)
    store.delete_session(session_id)
    return removed

_QUESTION = re.compile(
    r"\bwhat\s+(?:else\s+)?(?:do|did|have)\s+you\s+(?:remember(?:ed)?|know|recall(?:ed)?|stored?|kept)\s+"
    r"(?:about|of|from)\s+me\b", re.IGNORECASE)


def asks_what_is_remembered(text: str) -> bool:
    return bool(_QUESTION.search(text))


class RememberSkill:
    name = "memory"
    description = "Show what the agent remembers about you (ask: what do you remember about me?)"
    intents: tuple[str, ...] = ()
    command = "memory"

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit

    def run(self, request: SkillRequest) -> Iterator[str]:
        if request.memory is None:
            yield "My memory is switched off for this agent, so I keep nothing about you between sessions."
            return
        hits = request.memory.list(request.user_id, kinds=("turn", "fact", "document"),
                                   limit=self.limit)
        if not hits:
            yield "I don't remember anything about you yet."
            return
        yield f"Here is what I remember about you ({len(hits)} most recent):\n\n"
        for hit in hits:
            when = ""
            created = getattr(hit, "created_at", None)
            if isinstance(created, (int, float)):
                when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d") + ": "
            text = " ".join(str(hit.text).split())
            yield f"- {when}{text[:200]}{'…' if len(text) > 200 else ''}\n"
            request.sources.append(MemoryRef(id=int(hit.id), text=str(hit.text), score=0.0, kind=str(hit.kind),
                                             source=getattr(hit, "source", None)))
        yield "\nSay /forget to delete all of it, or remove single items in the insight panel."
