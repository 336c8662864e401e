"""The handoff webhook: when a turn sets ``handoff``, POST the session summary to a URL.

The hook only enqueues (the dialogue manager calls it on the turn's thread, just before the
reply's last event goes out); a background thread builds the payload from the conversation
store and delivers it, retrying with exponential backoff and jitter on network errors, 5xx
and 429. Every attempt of one notification carries the same ``Idempotency-Key``, so the
receiver can drop duplicates. With ``webhook.secret_env`` set, ``X-Llmos-Signature``
carries ``sha256=`` + the hex HMAC-SHA256 of the body under that secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import random
import secrets
import threading
import time
from typing import Any

import httpx

from agent.config import WebhookConfig
from agent.dialogue.store import ConversationStore
from agent.server.session_ids import public_id
from agent.turn import Reply

__all__ = ["HandoffNotifier"]

log = logging.getLogger(__name__)

_STOP = object()


class HandoffNotifier:
    """A handoff hook (``notifier(reply)``) delivering in the background."""

    def __init__(self, config: WebhookConfig, store: ConversationStore, *, max_pending: int = 1000,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not config.url:
            raise ValueError("HandoffNotifier needs webhook.url")
        self.config = config
        self.url = config.url
        self.store = store
        self._secret = os.environ.get(config.secret_env, "").encode() if config.secret_env else b""
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._client = httpx.Client(timeout=config.timeout_s, transport=transport)
        self._closing = threading.Event()
        self.delivered = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="llmos-webhook", daemon=True)
        self._thread.start()

    def __call__(self, reply: Reply) -> None:
        try:
            self._queue.put_nowait(reply)
        except queue.Full:
            self.dropped += 1
            log.error("handoff webhook queue is full (%d pending): dropped session %s", self._queue.maxsize,
                      reply.session_id)

    def payload(self, reply: Reply) -> dict[str, Any]:
        """The JSON body for one handoff: the session, its summary and latest messages."""
        session = self.store.get_session(reply.session_id)
        summary, _ = self.store.summary(reply.session_id)
        messages = self.store.messages(reply.session_id)[-self.config.transcript_messages:] \
            if self.config.transcript_messages else []
        return {
            "event": "handoff",
            "id": f"hnd_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "session": {"id": public_id(session.id, session.user_id), "user_id": session.user_id, "title": session.title,
                        "turns": session.turns, "summary": summary},
            "trigger": reply.model_dump(mode="json", include={"intent", "sentiment", "frustration", "skill"}),
            "last_reply": reply.text,
            "transcript": [{"role": m.role, "content": m.content, "created_at": m.created_at} for m in messages],
        }

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                payload = self.payload(item)
            except Exception:  # e.g. the session was deleted meanwhile
                log.exception("could not build the handoff payload for session %s", item.session_id)
                self.dropped += 1
                continue
            self._deliver(json.dumps(payload, ensure_ascii=False).encode("utf-8"), payload["id"])

    def _deliver(self, body: bytes, event_id: str) -> None:
        headers = {"Content-Type": "application/json", "X-Llmos-Event": "handoff", "Idempotency-Key": event_id}
        if self._secret:
            headers["X-Llmos-Signature"] = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        for attempt in range(self.config.retries + 1):
            if attempt:
                delay = min(60.0, self.config.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                if self._closing.wait(delay):
                    break
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("handoff webhook %s: attempt %d failed: %s", self.url, attempt + 1, exc)
                continue
            if response.status_code < 300:
                self.delivered += 1
                return
            if response.status_code < 500 and response.status_code != 429:
                log.error("handoff webhook %s refused %s with HTTP %d; not retrying", self.url, event_id,
                          response.status_code)
                self.dropped += 1
                return
            log.warning("handoff webhook %s: attempt %d got HTTP %d", self.url, attempt + 1, response.status_code)
        self.dropped += 1
        log.error("handoff webhook %s: gave up on %s", self.url, event_id)

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the notification in hand (pending ones are logged as dropped)."""
        self._closing.set()
        pending = self._queue.qsize()
        if pending:
            log.warning("handoff webhook: %d notifications not sent at shutdown", pending)
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._client.close()
