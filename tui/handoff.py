"""A handoff to a person, said in the conversation itself.

A turn that sets ``Reply.handoff`` (the user asked for a person, or their frustration passed
the configured threshold) gets a note under the reply that says so and what happens next:
who is notified (the agent's handoff hooks; ``llmos chat`` adds the config's
``server.webhook.url``), or that nobody is, and how to change that.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from tui.sanitize import one_line

__all__ = ["handoff_note", "attach_webhook"]

log = logging.getLogger(__name__)


def _config(agent: Any, *path: str) -> Any:
    node = getattr(agent, "config", None)
    for name in path:
        node = getattr(node, name, None)
    return node


def handoff_note(meta: dict[str, Any], agent: Any) -> str:
    """The transcript's note for a reply whose ``meta`` has ``handoff`` set."""
    intent = (meta.get("intent") or {}).get("label")
    asked = intent is not None and intent == _config(agent, "understanding", "handoff_intent")
    why = "You asked for a person." if asked else "This conversation needs a person."
    hooks = list(getattr(agent, "on_handoff", None) or [])
    urls = [url for url in (getattr(hook, "url", None) for hook in hooks) if url]
    if urls:
        host = urlsplit(str(urls[0])).netloc or str(urls[0])
        after = f"The helpdesk at {host} has been sent this conversation; a person will follow up."
    elif hooks:
        after = "It has been passed on; a person will follow up."
    else:
        after = ("Nobody was notified: this agent has no handoff set up (server.webhook.url in its "
                 "config). The conversation is saved.")
    return one_line(f"Handoff: {why} {after}", 400)


def attach_webhook(agent: Any) -> Any:
    """Send handoffs to the config's ``server.webhook.url`` from this chat too, as ``llmos serve``
    does; the notifier (to close at exit), or None when there is no webhook."""
    webhook = _config(agent, "server", "webhook")
    if not getattr(webhook, "url", None):
        return None
    from agent.server.webhook import HandoffNotifier

    notifier = HandoffNotifier(webhook, agent.store)
    agent.on_handoff.append(notifier)
    return notifier
