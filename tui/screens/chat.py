"""The chat screen: owns the conversation flow and the status; widgets post messages up.

A turn runs in a thread worker (``agent.stream`` is a blocking iterator); each neutralized
piece is handed to the reply's Markdown stream with ``call_from_thread``. Escape cancels the
stream (the agent stops at the next token). On error the user's draft comes back into the
input and the error is shown as a notification.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Footer
from textual.worker import Worker

from tui import commands
from tui.clipboard import copy_text
from tui.sanitize import StreamNeutralizer, one_line
from tui.screens.actions import WIDE, ChatActions
from tui.state import LastSession
from tui.types import AgentLike, TurnStreamLike
from tui.widgets import (
    CommandHints,
    Conversation,
    InsightPanel,
    MessageView,
    PromptInput,
    SessionSidebar,
    StatusLine,
)
from tui.widgets.insight import tokens_per_second

__all__ = ["ChatScreen", "reply_meta"]


def reply_meta(reply: Any) -> dict[str, Any]:
    """A Reply (pydantic) or a dict as JSON-able dicts, as history messages carry it."""
    if hasattr(reply, "model_dump"):
        return dict(reply.model_dump(mode="json"))
    return dict(reply or {})


class ChatScreen(ChatActions):
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+b", "toggle_sidebar", "Sessions"),
        Binding("ctrl+t", "toggle_insight", "Insight"),
        Binding("ctrl+n", "new_session", "New"),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+o", "attach", "Attach", show=False),
        Binding("ctrl+r", "copy_reply", "Copy reply", show=False),
        Binding("f1", "help", "Help"),
    ]

    generating: reactive[bool] = reactive(False)

    def __init__(self, agent: AgentLike, *, user_id: str = "local", session_id: str | None = None,
                 last_session: LastSession | None = None) -> None:
        super().__init__(id="chat")
        self.agent = agent
        self.user_id = user_id
        self.last_session = last_session
        self._open_session = session_id  # not remembered yet: on_mount may resume another
        self._stream: TurnStreamLike | None = None
        self._stop_requested = False
        self._worker: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield SessionSidebar(id="sidebar")
            with Vertical(id="chat-column"):
                yield StatusLine(id="status")
                yield Conversation(agent_name=self.agent_name, id="conversation")
                yield CommandHints(id="hints")
                yield PromptInput(id="prompt")
            yield InsightPanel(id="insight")
        yield Footer()

    async def on_mount(self) -> None:
        self.sidebar.display = self.app.size.width >= WIDE
        self.insight.display = False
        self.query_one(CommandHints).display = False
        self.status.model = f"{self.agent_name} · {one_line(self.agent.model_name, 40)}"
        session_id = self.session_id or self.resumable()
        if session_id:
            await self.open_session(session_id)
        else:
            self.refresh_sessions()
        self.prompt.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        return True

    def watch_generating(self, generating: bool) -> None:
        self.refresh_bindings()
        if self.is_mounted:
            # On the status line only: a class on the screen would restyle every message.
            self.status.set_class(generating, "generating")

    # -- input ---------------------------------------------------------------------------

    @on(PromptInput.Changed)
    def _prompt_changed(self, event: PromptInput.Changed) -> None:
        self.query_one(CommandHints).show_for(event.text_area.text)

    @on(PromptInput.PageRequested)
    def _page(self, event: PromptInput.PageRequested) -> None:
        # Scrolling up lets go of the bottom anchor; reaching the end again takes it back.
        self.conversation.page(event.pages)

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        parsed = commands.parse(event.text)
        if parsed is not None:
            event.prompt.accept(event.draft)
            await self.run_command(*parsed)
            return
        word = event.text.strip().split(maxsplit=1)[0]
        if word.startswith("/") and not commands.matches(word.lower()):
            self.notify(f"Unknown command {one_line(word, 40)}: /help lists them.", severity="warning",
                        markup=False)
            return
        if self.generating:
            self.notify("A reply is still coming: wait, or press Escape to stop it.", severity="warning",
                        markup=False)
            return
        event.prompt.accept(event.draft)
        await self.send(event.text, event.draft)

    async def send(self, text: str, draft: str) -> None:
        """Start a turn: show the message (as drafted) and stream the reply into a new view."""
        user_view, reply_view = await self.conversation.start_turn(draft)
        self.generating = True
        self._stop_requested = False
        self.status.state = "thinking…"
        self._worker = self._run_turn(text, draft, self.session_id, user_view, reply_view)

    class _Piece(Message):
        """Text for a reply view, posted by the turn worker (post_message is thread-safe and
        keeps the order; the worker never waits for the UI, so a slow repaint cannot slow
        generation down)."""

        def __init__(self, view: MessageView, text: str) -> None:
            super().__init__()
            self.view = view
            self.text = text

    class _Done(Message):
        def __init__(self, view: MessageView, reply: Any) -> None:
            super().__init__()
            self.view = view
            self.reply = reply

    class _Failed(Message):
        def __init__(self, error: BaseException, draft: str, views: tuple[MessageView, ...]) -> None:
            super().__init__()
            self.error = error
            self.draft = draft
            self.views = views

    class _Progress(Message):
        def __init__(self, view: MessageView, fraction: float, what: str) -> None:
            super().__init__()
            self.view = view
            self.fraction = fraction
            self.what = what

    class _Started(Message):
        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    @work(thread=True, group="turn", exit_on_error=False)
    def _run_turn(self, text: str, draft: str, session_id: str | None, user_view: MessageView,
                  reply_view: MessageView) -> None:
        post = self.post_message

        def progress(fraction: float, what: str) -> None:
            post(self._Progress(reply_view, fraction, what))

        try:
            stream = self.agent.stream(text, user_id=self.user_id, session_id=session_id, progress=progress)
            self._stream = stream
            if self._stop_requested:
                stream.cancel()
            post(self._Started(stream.session_id))
            cleaner = StreamNeutralizer()
            for piece in stream:
                if clean := cleaner.feed(piece):
                    post(self._Piece(reply_view, clean))
            if tail := cleaner.flush():
                post(self._Piece(reply_view, tail))
            reply = stream.reply
        except Exception as exc:  # shown to the user; the draft comes back
            post(self._Failed(exc, draft, (user_view, reply_view)))
            return
        finally:
            self._stream = None
        post(self._Done(reply_view, reply))

    # A view that is gone (the user switched sessions) ignores what its worker still sends.

    async def on_chat_screen__piece(self, message: _Piece) -> None:
        if message.view.is_attached:
            await message.view.write(message.text)

    def on_chat_screen__started(self, message: _Started) -> None:
        self.status.state = "generating…  (Esc stops)"
        if message.session_id != self.session_id:
            self.session_id = message.session_id
            self.refresh_sessions()

    def on_chat_screen__progress(self, message: _Progress) -> None:
        if not self.generating or message.fraction >= 1.0 or not message.view.is_attached:
            return
        message.view.show_progress(message.fraction, message.what)
        done = f"{message.fraction:.0%} " if message.fraction > 0 else ""
        self.status.state = f"working… {done}({one_line(message.what, 30)})  (Esc stops)"

    async def on_chat_screen__done(self, message: _Done) -> None:
        if not message.view.is_attached:
            return
        meta = reply_meta(message.reply)
        await message.view.finish(meta)
        self.generating = False
        self.session_id = meta.get("session_id") or self.session_id
        rate = tokens_per_second(meta)
        total = (meta.get("timings_ms") or {}).get("total")
        state = "stopped" if meta.get("finish_reason") == "cancelled" else "ready"
        if rate:
            state += f" · {rate:.1f} tok/s"
        if total:
            state += f" · {total / 1000:.1f}s"
        self.status.state = state
        self.insight.show(meta)
        self.refresh_sessions()
        if note := self.note_for(meta):
            await self.conversation.add_note(message.view, note)

    async def on_chat_screen__failed(self, message: _Failed) -> None:
        if not message.views[-1].is_attached:
            self.show_error(message.error)
            return
        for view in message.views:
            if view.is_attached:
                await view.remove()
        self.generating = False
        self.status.state = "error"
        self.prompt.restore(message.draft)
        self.show_error(message.error)

    def on_unmount(self) -> None:
        # Free the worker thread if the app goes away mid-reply.
        self._stop_requested = True
        if self._stream is not None:
            self._stream.cancel()

    def action_stop(self) -> None:
        if not self.generating:
            return
        self._stop_requested = True
        if self._stream is not None:
            self._stream.cancel()
        self.status.state = "stopping…"

    async def stop_generation(self) -> None:
        """Cancel the reply being generated and wait for its worker to end."""
        worker = self._worker
        if not self.generating or worker is None:
            return
        self.action_stop()
        try:
            await worker.wait()
        except Exception:  # the worker reports its own errors
            pass
        self.generating = False
        self.status.state = "stopped"

    # -- messages from the widgets ---------------------------------------------------------

    @on(MessageView.Selected)
    def _message_selected(self, event: MessageView.Selected) -> None:
        if event.view.role == "assistant" and event.view.meta:
            self.insight.show(event.view.meta)

    @on(MessageView.TypedAhead)
    def _typed_ahead(self, event: MessageView.TypedAhead) -> None:
        prompt = self.prompt
        prompt.focus()
        prompt.move_cursor(prompt.document.end)
        prompt.insert(event.character)

    @on(MessageView.CopyRequested)
    def _copy(self, event: MessageView.CopyRequested) -> None:
        copy_text(self.app, event.text)
        self.notify(f"Copied the {event.what} ({len(event.text):,} characters).", markup=False)

    def action_copy_reply(self) -> None:
        view = self.conversation.last_reply()
        if view is None or not view.text:
            self.notify("No reply to copy yet.", severity="warning", markup=False)
            return
        copy_text(self.app, view.text)
        self.notify(f"Copied the last reply ({len(view.text):,} characters).", markup=False)

    @property
    def narrow(self) -> bool:
        """Below WIDE columns the sidebar and the insight panel take turns."""
        return self.size.width < WIDE

    def on_resize(self) -> None:
        if self.narrow and self.sidebar.display and self.insight.display:
            self._hide_sidebar()

    def _hide_sidebar(self) -> None:
        sidebar = self.sidebar
        had_focus = sidebar.has_focus_within
        sidebar.display = False
        if had_focus:
            self.prompt.focus()

    def action_toggle_sidebar(self) -> None:
        if self.sidebar.display:
            self._hide_sidebar()
            self.prompt.focus()
            return
        if self.narrow:
            self.insight.display = False
        self.sidebar.display = True
        self.refresh_sessions()
        self.sidebar.options.focus()

    @on(SessionSidebar.Left)
    def _sidebar_left(self) -> None:
        if self.narrow:
            self._hide_sidebar()
        self.prompt.focus()

    def action_toggle_insight(self) -> None:
        insight = self.insight
        insight.display = not insight.display
        if insight.display:
            if self.narrow and self.sidebar.display:
                self._hide_sidebar()
            last = self.conversation.last_reply()
            insight.show(last.meta if last is not None else None)
