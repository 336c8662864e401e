"""``python tests/helpers/scripts/tui_fake_chat.py DATA_DIR [REPLY ...]``: the chat app on the
real Agent with the fake backend (scripted replies, then echoes), for the real-terminal tests
(tmux) that need a model whose output they choose, escape sequences included. REPLY
arguments are Python string literals (so ``'\\x1b]0;title\\x07'`` is an escape sequence)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


def main(argv: list[str]) -> int:
    from agent import Agent, load_config
    from agent.backends import FakeBackend
    from tui.app import ChatApp

    data_dir, *replies = argv
    config = load_config(environ={}, overrides={
        "model": {"backend": "fake"}, "memory": {"enabled": False}, "understanding": {"enabled": False},
        "data_dir": data_dir})
    backend = FakeBackend([ast.literal_eval(reply) for reply in replies], name="fake-model")
    app = ChatApp(Agent(config, backend=backend, skills={}))
    app.run()
    return int(app.return_code or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
