"""Conversation commands: ``sessions list`` and ``sessions delete``.

::

    llmos sessions list [--user U] [--json]
    llmos sessions delete ID... [--user U]     the messages, the summary and the memories that came from them

They open the agent's conversation store and memory store directly (no model is loaded).
``--user`` defaults to ``local``, the user ``llmos ask`` and ``llmos chat`` use; a session of
another user is refused as if it did not exist.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from agent.cli.common import add_config_arg, config_from_args
from agent.errors import InputError

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``sessions`` command."""
    top = groups.top.add_parser("sessions", help="conversations: list them, delete them with their memories")
    sub = top.add_subparsers(dest="sessions_command", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="a user's sessions, most recent first")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("delete", help="delete sessions with their summaries and the memories that came from them")
    rm.add_argument("ids", nargs="+", metavar="ID")
    for parser, handler in ((ls, _list), (rm, _delete)):
        parser.add_argument("--user", default="local", help="user id (default: local)")
        add_config_arg(parser)
        parser.set_defaults(func=handler)


class _Stores:
    """The agent's conversation store and (when enabled) memory store, closed together."""

    def __init__(self, args: argparse.Namespace) -> None:
        from agent.dialogue.store import ConversationStore

        config = config_from_args(args)
        data = config.resolved_data_dir()
        self.conversations = ConversationStore(data / "conversations.sqlite3")
        self.memory: Any = None
        if config.memory.enabled:
            from memory import build_store

            self.memory = build_store(config.memory, data_dir=data / "memory")

    def __enter__(self) -> _Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.memory is not None:
            self.memory.close()
        self.conversations.close()


def _list(args: argparse.Namespace) -> int:
    with _Stores(args) as stores:
        sessions = stores.conversations.sessions(args.user)
    if args.json:
        print(json.dumps([vars(s) for s in sessions], ensure_ascii=False))
        return 0
    if not sessions:
        print(f"no sessions for user {args.user}")
    for s in sessions:
        when = dt.datetime.fromtimestamp(s.updated_at).strftime("%Y-%m-%d %H:%M")
        print(f"{s.id}  {when}  {s.turns:>4} turns  {' '.join(s.title.split())[:60]}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from agent.dialogue.remember import delete_session

    with _Stores(args) as stores:
        owned = {s.id for s in stores.conversations.sessions(args.user)}
        missing = [sid for sid in args.ids if sid not in owned]
        if missing:
            raise InputError(f"user {args.user} has no session {', '.join(missing)}: see `llmos sessions list "
                             f"--user {args.user}`")
        for sid in args.ids:
            removed = delete_session(stores.conversations, stores.memory, sid)
            print(f"deleted session {sid} and {removed} memor{'y' if removed == 1 else 'ies'} from it")
    return 0
