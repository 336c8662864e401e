"""The chat screen's commands: sessions, /commands, export, attach, memory.

The base class of :class:`tui.screens.chat.ChatScreen`, split out to keep each module about
one thing: ``chat.py`` runs turns, this module does everything else the user can ask for.
Store calls are quick (SQLite) and run on the UI thread; adding a document to the knowledge
base embeds it, so it runs in a worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.screen import Screen

from agent.errors import LlmosError
from tui.commands import SlashCommand
from tui.export import default_export_path, session_markdown, write_export
from tui.handoff import handoff_note
from tui.sanitize import neutralize, one_line
from tui.screens.dialogs import AskText, AttachFile, Confirm
from tui.screens.help import HelpScreen
from tui.screens.memory import MemoryScreen
from tui.screens.model import ModelScreen
from tui.state import LastSession
from tui.types import AgentLike
from tui.widgets import Conversation, InsightPanel, PromptInput, SessionSidebar, StatusLine

__all__ = ["ChatActions", "ATTACH_LIMIT", "WIDE"]

WIDE = 110
"""From this width on the sessions sidebar starts open, and stays open beside the insight panel."""

ATTACH_LIMIT = 1_000_000
"""Bytes: a larger file goes into the knowledge base, not into a message."""


class ChatActions(Screen[None]):
    """The base of the chat screen: its parts, and everything but running a turn."""

    agent: AgentLike
    user_id: str
    last_session: LastSession | None = None
    """Where the open session is remembered, so that a restart reopens it (None: nowhere)."""
    _open_session: str | None = None

    @property
    def session_id(self) -> str | None:
        """The open session (None: a new chat, created on its first message)."""
        return self._open_session

    @session_id.setter
    def session_id(self, session_id: str | None) -> None:
        self._open_session = session_id
        if self.last_session is not None:
            self.last_session.set(self.user_id, session_id)

    @property
    def agent_name(self) -> str:
        return str(getattr(getattr(self.agent, "config", None), "name", "llmos") or "llmos")

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def sidebar(self) -> SessionSidebar:
        return self.query_one(SessionSidebar)

    @property
    def insight(self) -> InsightPanel:
        return self.query_one(InsightPanel)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    async def stop_generation(self) -> None:
        """Cancel the reply being generated, if any, and wait for it (the chat screen runs turns)."""

    # -- errors --------------------------------------------------------------------------

    def show_error(self, error: BaseException) -> None:
        text = str(error) if isinstance(error, LlmosError) else f"{type(error).__name__}: {error}"
        self.notify(one_line(text, 600), title="Error", severity="error", timeout=10, markup=False)

    def _safely(self, what: Any, *args: Any) -> Any:
        """Call the agent; an error becomes a notification (and None)."""
        try:
            return what(*args)
        except (LlmosError, OSError, ValueError) as exc:
            self.show_error(exc)
            return None

    # -- sessions ------------------------------------------------------------------------

    def refresh_sessions(self, highlight: str | None = None) -> None:
        """Reload the sidebar; ``highlight`` (default: the open session) gets the cursor."""
        sessions = self._safely(lambda: list(self.agent.sessions(user_id=self.user_id))) or []
        self.sidebar.show(sessions, self.session_id, highlight=highlight)
        current = next((s for s in sessions if s.id == self.session_id), None)
        self.status.session = (current.title or "New chat") if current else "new chat"

    async def open_session(self, session_id: str | None) -> None:
        """Show a stored session (None: an empty new chat, created on the first message)."""
        await self.stop_generation()
        history = self._safely(self.agent.history, session_id) if session_id else []
        if history is None:
            return
        self.session_id = session_id
        await self.conversation.load(history, notes=self.note_for)
        last = self.conversation.last_reply()
        self.insight.show(last.meta if last is not None else None)
        self.refresh_sessions()
        self.status.state = "ready"

    def note_for(self, meta: dict[str, Any]) -> str | None:
        """The note under a reply: a handoff to a person says so, and what happens next."""
        return handoff_note(meta, self.agent) if meta.get("handoff") else None

    def resumable(self) -> str | None:
        """The session this user had open last, if it is still there."""
        if self.last_session is None:
            return None
        last = self.last_session.get(self.user_id)
        sessions = self._safely(lambda: list(self.agent.sessions(user_id=self.user_id))) or []
        return last if any(session.id == last for session in sessions) else None

    async def new_session(self, title: str | None = None) -> None:
        await self.stop_generation()
        info = self._safely(lambda: self.agent.new_session(user_id=self.user_id, title=title))
        if info is not None:
            await self.open_session(info.id)
            self.prompt.focus()

    async def action_new_session(self) -> None:
        await self.new_session()

    @on(SessionSidebar.Selected)
    async def _session_selected(self, event: SessionSidebar.Selected) -> None:
        if event.session_id != self.session_id:
            await self.open_session(event.session_id)
        if self.size.width < WIDE:  # give the room back to the conversation
            self.sidebar.display = False
        self.prompt.focus()

    @on(SessionSidebar.NewRequested)
    async def _session_new(self) -> None:
        await self.new_session()

    @on(SessionSidebar.RenameRequested)
    def _session_rename(self, event: SessionSidebar.RenameRequested) -> None:
        def renamed(title: str | None) -> None:
            if title and title.strip():
                self._safely(self.agent.rename_session, event.session_id, title.strip())
                self.refresh_sessions(highlight=event.session_id)

        self.app.push_screen(AskText("Rename the session", event.title), renamed)

    @on(SessionSidebar.DeleteRequested)
    def _session_delete(self, event: SessionSidebar.DeleteRequested) -> None:
        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            if event.session_id == self.session_id:
                await self.open_session(None)
            self._safely(self.agent.delete_session, event.session_id)
            self.refresh_sessions()

        self.app.push_screen(Confirm(f"Delete the session “{event.title}”?"), confirmed)

    # -- slash commands ------------------------------------------------------------------

    async def run_command(self, command: SlashCommand, arg: str) -> None:
        if command.name == "/help":
            self.action_help()
        elif command.name == "/new":
            await self.new_session(arg or None)
        elif command.name == "/memory":
            self.app.push_screen(MemoryScreen(self.agent, self.user_id))
        elif command.name == "/forget":
            self._forget(arg)
        elif command.name == "/export":
            if arg:
                self.export(arg)
            else:
                self.action_export()
        elif command.name == "/model":
            self._show_model()
        elif command.name == "/attach":
            self.action_attach(arg)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def _show_model(self) -> None:
        self.app.push_screen(ModelScreen(self.agent))

    def _forget(self, arg: str) -> None:
        if not arg:
            def confirmed(yes: bool | None) -> None:
                if not yes:
                    return
                try:
                    self.agent.forget_user(self.user_id)
                except LlmosError as exc:
                    self.show_error(exc)
                    return
                self.notify("Forgot everything the agent remembered about you.", markup=False)

            self.app.push_screen(Confirm("Forget everything the agent remembers about you?"), confirmed)
            return
        try:
            ids = [int(part.lstrip("#")) for part in arg.replace(",", " ").split()]
        except ValueError:
            self.notify("Usage: /forget [ID ...] (ids from /memory or the insight panel)", severity="warning",
                        markup=False)
            return
        try:
            self.agent.forget_memory(ids)
        except LlmosError as exc:
            self.show_error(exc)
            return
        for memory_id in ids:
            self.insight.drop_memory(memory_id)
        self.notify(f"Forgot {len(ids)} memor{'y' if len(ids) == 1 else 'ies'}.", markup=False)

    @on(InsightPanel.ForgetMemory)
    def _forget_one(self, event: InsightPanel.ForgetMemory) -> None:
        self._forget(str(event.memory_id))

    # -- export --------------------------------------------------------------------------

    def action_export(self) -> None:
        """Ask where to export the session (the full default path, editable), then write it."""
        if not self.session_id:
            self.notify("Nothing to export yet: send a message first.", severity="warning", markup=False)
            return
        default = default_export_path(self.status.session).absolute()

        def chosen(answer: str | None) -> None:
            if not answer or not answer.strip():
                return
            path = Path(answer.strip()).expanduser()
            if not path.is_file():
                self.export(str(path))
                return

            def replace(yes: bool | None) -> None:
                if yes:
                    self.export(str(path))

            self.app.push_screen(Confirm(f"{path} exists: replace it?"), replace)

        self.app.push_screen(AskText("Export the session as Markdown (Enter saves, Esc cancels)",
                                     str(default), path=True), chosen)

    def export(self, target: str) -> Path | None:
        """Write the session to ``target`` (a folder: a new file in it; empty: the current
        directory) and say where, in full."""
        if not self.session_id:
            self.notify("Nothing to export yet: send a message first.", severity="warning", markup=False)
            return None
        history = self._safely(self.agent.history, self.session_id)
        if history is None:
            return None
        title = self.status.session
        markdown = session_markdown(title, history, agent_name=self.agent_name, model=self.agent.model_name)
        path = Path(target).expanduser() if target else default_export_path(title)
        if path.is_dir():
            path = default_export_path(title, path)
        written = self._safely(write_export, path.absolute(), markdown)
        if written is not None:
            self.notify(one_line(f"Exported {len(history)} messages to {written}", 600), title="Export",
                        markup=False, timeout=10)
        return written

    # -- attach --------------------------------------------------------------------------

    def action_attach(self, path: str = "") -> None:
        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.attach(*choice)

        self.app.push_screen(AttachFile(path), chosen)

    def attach(self, where: str, raw_path: str) -> None:
        path = Path(raw_path).expanduser()
        if not path.is_file():
            self.notify(f"No such file: {one_line(raw_path, 200)}", severity="error", markup=False)
            return
        if where == "kb":
            self.status.state = f"adding {one_line(path.name, 30)}…"
            self._add_document(path)
            return
        try:
            data = path.read_bytes()[: ATTACH_LIMIT + 1]
        except OSError as exc:
            self.show_error(exc)
            return
        if len(data) > ATTACH_LIMIT or b"\x00" in data[:8192]:
            self.notify("That file is binary or over 1 MB: add it to the knowledge base instead.",
                        severity="warning", markup=False)
            return
        text = neutralize(data.decode("utf-8", errors="replace"))
        fence = "````" if "```" in text else "```"
        self.prompt.attach_text(f"{path.name}:\n{fence}{path.suffix.lstrip('.')}\n{text.rstrip()}\n{fence}\n")

    @work(thread=True, group="attach", exit_on_error=False)
    def _add_document(self, path: Path) -> None:
        try:
            count = self.agent.add_document(str(path), user_id=self.user_id)
        except Exception as exc:  # shown, never fatal
            self.app.call_from_thread(self.show_error, exc)
            self.app.call_from_thread(setattr, self.status, "state", "ready")
            return
        message = (f"Added {count} passage{'s' if count != 1 else ''} from {path.name} to the knowledge base, "
                   f"as your own document: only your answers draw on it (`llmos kb list` shows it under "
                   f"user {self.user_id}).")
        self.app.call_from_thread(self.notify, one_line(message, 300), markup=False)
        self.app.call_from_thread(setattr, self.status, "state", "ready")
