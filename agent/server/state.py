"""The server's shared state: the agent, its worker threads, auth, limits, the webhook.

Turns block (generation, SQLite), so they run on a dedicated thread pool rather than the
event loop; one :class:`~agent.dialogue.Agent` serves every request, which keeps turns of a
session ordered (its per-session lock) and lets the batching backend see every concurrent
generation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from agent.config import ServerConfig
from agent.server.auth import Authenticator, Principal
from agent.server.errors import ApiError
from agent.server.limits import Limiter
from agent.server.overrides import OverridingBackend
from agent.server.session_ids import stored_id
from agent.server.threads import ConversationIndex

if TYPE_CHECKING:
    from agent.dialogue import Agent
    from agent.dialogue.store import SessionInfo
    from agent.server.webhook import HandoffNotifier

__all__ = ["ServerState"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ServerState:
    agent: Agent
    config: ServerConfig
    executor: ThreadPoolExecutor
    auth: Authenticator
    limiter: Limiter
    index: ConversationIndex
    agent_model: str
    """The model id that runs the full dialogue pipeline."""
    backend_model: str
    """The backend's own model id: a plain, stateless model call."""
    raw_backend: Any
    notifier: HandoffNotifier | None = None
    started: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def build(cls, agent: Agent, config: ServerConfig) -> ServerState:
        base = agent.config.generation
        raw = agent.backend.inner if isinstance(agent.backend, OverridingBackend) else agent.backend
        if not isinstance(agent.backend, OverridingBackend):
            agent.backend = OverridingBackend(agent.backend, base)
        notifier = None
        if config.webhook.url:
            from agent.server.webhook import HandoffNotifier

            notifier = HandoffNotifier(config.webhook, agent.store)
            agent.on_handoff.append(notifier)
        if not config.allow_code_execution:
            for name, skill in list(agent.skills.items()):
                if getattr(skill, "executes_code", False):
                    log.info("skill %s executes code: not served (set server.allow_code_execution to serve it)",
                             name)
                    del agent.skills[name]
        return cls(
            agent=agent, config=config,
            executor=ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="llmos-turn"),
            auth=Authenticator(config), limiter=Limiter(),
            index=ConversationIndex(agent.config.resolved_data_dir() / "server-threads.sqlite3"),
            agent_model=config.model_alias or agent.config.name, backend_model=raw.name, raw_backend=raw,
            notifier=notifier)

    @property
    def flush_s(self) -> float:
        """How long streamed pieces may wait for company (``stream_flush_ms``), in seconds."""
        return self.config.stream_flush_ms / 1000.0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` on the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args))

    def find_session(self, user_id: str, session_id: str) -> SessionInfo | None:
        """``user_id``'s session that clients call ``session_id`` (see
        :mod:`agent.server.session_ids`), or None; never another user's."""
        store = self.agent.store
        for candidate in (stored_id(user_id, session_id), session_id):
            if store.session_exists(candidate):
                info = store.get_session(candidate)
                if info.user_id == user_id:
                    return info
        return None

    def _sessions_named(self, who: Principal, session_id: str, user: str | None) -> list[SessionInfo]:
        store = self.agent.store
        if user is not None:
            found = self.find_session(user, session_id)
            return [found] if found is not None else []
        out: list[SessionInfo] = []
        if store.session_exists(session_id):  # a plain id: the server chose it, or a local client did
            info = store.get_session(session_id)
            if who.may_act_for(info.user_id):
                out.append(info)
        users = sorted(who.users) if who.users is not None else [who.default_user]
        for candidate in users:
            scoped = stored_id(candidate, session_id)
            if store.session_exists(scoped):
                out.append(store.get_session(scoped))
        return out

    async def owned_session(self, who: Principal, session_id: str, user: str | None = None) -> SessionInfo:
        """The session clients call ``session_id``, of ``user`` (checked against the key) or,
        unnamed, of any user the key may act for; else 404, whether or not another user has
        such a session (their ids are not revealed)."""
        user = who.resolve_user(user) if user is not None else None
        found = await self.call(self._sessions_named, who, session_id, user)
        if len(found) > 1:
            raise ApiError(400, f"several users this API key acts for have a session {session_id!r}: name the "
                                "user with ?user=USER", param="user")
        if not found:
            hint = " (or name its user with ?user=USER)" if user is None and who.users is None else ""
            raise ApiError(404, f"no session {session_id!r} for this API key: list sessions with GET "
                                f"/v1/sessions?user=USER{hint}", param="session_id")
        return found[0]

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.index.close()
