"""The dialogue manager: one turn runs normalize -> understand -> route -> recall ->
prompt -> generate -> persist, each stage timed.

Dependencies are passed in (backend, conversation store, memory, understanding, skills),
so tests hand it fakes; :meth:`Agent.from_config` builds the real ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.backends.base import Backend
from agent.config import AgentConfig, load_config
from agent.dialogue.context import Turn, plan_prompt, transcript
from agent.dialogue.remember import asks_what_is_remembered, delete_session
from agent.dialogue.store import ConversationStore, Message, SessionInfo
from agent.errors import ConfigError, LlmosError, MemoryStoreError
from agent.models.embedded import Progress
from agent.models.textstream import TextStream
from agent.normalize import normalize_text
from agent.options import GenerationOptions
from agent.prompts import reference_block, render_persona
from agent.turn import MemoryBackend, MemoryRef, Reply, TokenCounts, ToolRecord, Understanding, Understood
from agent.understand.routing import worth_remembering

__all__ = ["Agent", "TurnStream", "HandoffHook"]

log = logging.getLogger(__name__)

HandoffHook = Callable[[Reply], None]
"""Called after a turn that set ``Reply.handoff`` (e.g. to page a human)."""


class _Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - t) * 1000, 2)

    def total(self) -> dict[str, float]:
        return {**self.ms, "total": round((time.perf_counter() - self.start) * 1000, 2)}


class TurnStream:
    """A turn in progress: iterate for text pieces; then ``reply`` holds the :class:`Reply`.

    ``cancel()`` may be called from any thread; the reply then has
    ``finish_reason == "cancelled"`` and what was generated so far is kept.
    """

    def __init__(self, user_id: str, session_id: str, run: Callable[[TurnStream], Generator[str, None, None]],
                 progress: Callable[[float, str], None] | None = None, *, created: bool = False) -> None:
        """``run(turn)`` yields the turn's pieces (the agent's turn loop, given this stream to
        report into: :meth:`follow`, :attr:`reply`)."""
        self.session_id = session_id
        self.user_id = user_id
        self.created = created
        """The session was made for this turn (a turn that fails removes it again)."""
        self.progress = progress
        """Where a long skill (map-reduce summaries) reports (fraction done, message)."""
        self.reply: Reply | None = None
        self._cancelled = threading.Event()
        self._generation: TextStream | None = None
        self._pieces = run(self)

    def __iter__(self) -> TurnStream:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def cancel(self) -> None:
        self._cancelled.set()
        if self._generation is not None:
            self._generation.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def follow(self, generation: TextStream) -> None:
        """Cancel ``generation`` along with this turn (at once if the turn is already cancelled)."""
        self._generation = generation
        if self.cancelled:
            generation.cancel()

    def close(self) -> None:
        self._pieces.close()

    def result(self) -> Reply:
        """Consume the rest and return the reply."""
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply


class Agent:
    """A conversational agent: ``chat`` or ``stream`` a turn, manage sessions.

    ``Agent()`` builds everything from the default config (the embedded SmolLM2 model,
    MiniLM embeddings, SQLite store in the user data dir). Pass components to override.
    """

    def __init__(self, config: AgentConfig | None = None, *, backend: Backend | None = None,
                 store: ConversationStore | None = None, memory: MemoryBackend | None = None,
                 understanding: Understanding | None = None, embedder: Any = None,
                 skills: Mapping[str, Any] | None = None, on_handoff: Sequence[HandoffHook] = (),
                 progress: Progress | None = None, tools: Mapping[str, Any] | Sequence[Any] | None = None) -> None:
        self.config = config or load_config()
        cfg = self.config
        data_dir = cfg.resolved_data_dir()
        if backend is None:
            from agent.backends import build_backend

            backend = build_backend(cfg.model, progress)
        self.backend = backend
        self.config = cfg = _with_model_sampling(cfg, backend)
        self.store = store or ConversationStore(data_dir / "conversations.sqlite3")
        needs_embedder = (memory is None and cfg.memory.enabled) or (understanding is None and cfg.understanding.enabled)
        if embedder is None and needs_embedder:
            from memory.factory import build_embedder

            embedder = build_embedder(cfg.memory)  # its device, batch size and int8 setting too
        self.embedder = embedder
        if memory is None and cfg.memory.enabled:
            from memory import build_store

            memory = build_store(cfg.memory, data_dir=data_dir / "memory", embedder=embedder)
        self.memory = memory
        if understanding is None and cfg.understanding.enabled:
            from agent.understand import build_understanding

            understanding = build_understanding(cfg.understanding, embedder)
        self.understanding = understanding
        if skills is None:
            from skills import load_skills

            skills = load_skills(cfg.skills)
        self.skills: dict[str, Any] = dict(skills)
        if self.memory is not None:
            from agent.dialogue.remember import RememberSkill

            self.skills.setdefault("memory", RememberSkill())
        self.tools = _tools(cfg, tools)
        """Tools the model may call, by name (``tools:`` in the config, MCP servers, or passed in)."""
        self.on_handoff: list[HandoffHook] = list(on_handoff)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_config(cls, config: str | Path | AgentConfig | None = None, **kwargs: Any) -> Agent:
        """An agent from a YAML file (or a config object); ``None`` reads ``LLMOS_CONFIG``/defaults."""
        if not isinstance(config, AgentConfig):
            config = load_config(config)
        return cls(config, **kwargs)

    @property
    def model_name(self) -> str:
        return self.backend.name

    # ---- sessions ----------------------------------------------------------------------
    def new_session(self, user_id: str = "local", title: str | None = None) -> SessionInfo:
        return self.store.create_session(user_id, title or "")

    def sessions(self, user_id: str = "local") -> list[SessionInfo]:
        return self.store.sessions(user_id)

    def rename_session(self, session_id: str, title: str) -> None:
        self.store.rename_session(session_id, title)

    def delete_session(self, session_id: str) -> None:
        """Delete a session with its summary and the memories that came from it
        (:func:`~agent.dialogue.remember.delete_session`)."""
        delete_session(self.store, self.memory, session_id)

    def history(self, session_id: str) -> list[Message]:
        return self.store.messages(session_id)

    # ---- memory ------------------------------------------------------------------------
    def remember(self, user_id: str = "local", limit: int = 50) -> list[MemoryRef]:
        """What the agent remembers about ``user_id`` (newest first)."""
        if self.memory is None:
            return []
        items = self.memory.list(user_id, limit=limit)
        return [_ref(h) for h in items]

    def forget_memory(self, ids: Sequence[int]) -> None:
        if self.memory is not None:
            self.memory.delete(list(ids))

    def forget_user(self, user_id: str) -> None:
        """Remove a user's memories and conversations."""
        if self.memory is not None:
            self.memory.forget(user_id)
        self.store.delete_user(user_id)

    def add_document(self, path: str | Path, user_id: str | None = None) -> int:
        """Add a file or folder to the knowledge base (shared, or ``user_id``'s own)."""
        from memory import ingest_paths

        return int(ingest_paths(self._document_store(), [Path(path)], user_id=user_id))

    def add_document_text(self, name: str, text: str, user_id: str | None = None) -> int:
        """Add a document given as text under ``name`` (shared, or ``user_id``'s own); return
        the passages stored (0: the same text was there already)."""
        from memory.kb import ingest_text

        return ingest_text(self._document_store(), name, text, user_id=user_id)

    def documents(self, user_id: str | None = None) -> list[Any]:
        """The documents ``user_id``'s answers draw on (the shared ones, then the user's own),
        each with its ``scope``; ``None``: the shared knowledge base only."""
        from memory.kb import list_all_documents, list_documents

        store = self._document_store()
        return list_documents(store, None) if user_id is None else list_all_documents(store, user_id)

    def remove_document(self, source: str, user_id: str | None = None) -> int:
        """Remove a document (shared, or ``user_id``'s own); return the passages removed."""
        from memory.kb import remove_documents

        return remove_documents(self._document_store(), [source], user_id=user_id)

    def _document_store(self) -> Any:
        if self.memory is None:
            raise MemoryStoreError("memory is disabled in this agent's config (memory.enabled: false)")
        from memory import MemoryStore

        if not isinstance(self.memory, MemoryStore):
            raise MemoryStoreError(f"documents go into llmos's memory store; this agent's memory is a "
                                   f"{type(self.memory).__name__}: add them through that backend instead")
        return self.memory

    # ---- turns -------------------------------------------------------------------------
    def chat(self, text: str, *, user_id: str = "local", session_id: str | None = None) -> Reply:
        """Run one turn and return the whole reply."""
        return self.stream(text, user_id=user_id, session_id=session_id).result()

    def stream(self, text: str, *, user_id: str = "local", session_id: str | None = None,
               progress: Callable[[float, str], None] | None = None) -> TurnStream:
        """Start a turn; iterate the result for text pieces, then read ``.reply``.

        Input is checked here, so a rejected message raises :class:`InputError` at once
        and nothing is stored. ``session_id=None`` starts a new session. ``progress`` is
        called with (fraction done, message) by skills that take several model calls
        before their first piece (a summary of a long text), for a progress bar.
        """
        timer = _Timer()
        with timer.stage("normalize"):
            clean = normalize_text(text, self.config.max_input_chars)
        created = session_id is None or not self.store.session_exists(session_id)
        if created:
            session_id = self.store.create_session(user_id, session_id=session_id).id
        else:
            self.store.create_session(user_id, session_id=session_id)  # checks ownership
        assert session_id is not None
        return TurnStream(user_id, session_id, lambda turn: self._run(turn, clean, timer), progress, created=created)

    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def _run(self, turn: TurnStream, text: str, timer: _Timer) -> Generator[str, None, None]:
        """The turn; if it fails in a session made for it, the session goes too (nothing
        half-written stays behind: no empty session for a turn that never happened)."""
        try:
            yield from self._stages(turn, text, timer)
        except Exception:
            if turn.created:
                with self._session_lock(turn.session_id):
                    if not self.store.messages(turn.session_id):
                        self.store.delete_session(turn.session_id)
            raise

    def _stages(self, turn: TurnStream, text: str, timer: _Timer) -> Generator[str, None, None]:
        """The turn's stages; a generator so the reply streams out of the middle."""
        with self._session_lock(turn.session_id):
            with timer.stage("understand"):
                understood = self._understand(text, turn.session_id)
            with timer.stage("route"):
                skill_name, skill_text = self._route(text, understood, turn.user_id)
            with timer.stage("recall"):
                recalled = self._recall(skill_text, turn.user_id, understood)
            with timer.stage("prompt"):
                messages, prompt_tokens = self._prompt(skill_text, turn.session_id, turn.user_id, recalled,
                                                       understood)
            out = _Generated(prompt_tokens)
            generate_started = time.perf_counter()
            try:
                if skill_name and skill_name.startswith(TOOL_ROUTE):
                    source = self._chat_pieces(turn, messages, out, first_choice=skill_name[len(TOOL_ROUTE):])
                elif skill_name:
                    source = self._skill_pieces(turn, skill_name, text, skill_text, messages, recalled, understood, out)
                else:
                    source = self._chat_pieces(turn, messages, out)
                for piece in source:
                    if out.first_ms is None:
                        out.first_ms = (time.perf_counter() - generate_started) * 1000
                    out.pieces.append(piece)
                    yield piece
            except GeneratorExit:
                # The consumer stopped reading: keep what was said, as a cancelled turn.
                out.finish = "cancelled"
                turn.cancel()
            timer.ms["generate"] = round((time.perf_counter() - generate_started) * 1000, 2)
            if out.first_ms is not None:
                timer.ms["first_token"] = round(out.first_ms, 2)
            with timer.stage("persist"):
                reply = Reply(
                    text="".join(out.pieces).strip(), session_id=turn.session_id, user_id=turn.user_id,
                    intent=understood.intent, sentiment=understood.sentiment, frustration=understood.frustration,
                    skill=skill_name, memories=_merge_refs(recalled, out.sources), handoff=understood.handoff,
                    tokens=TokenCounts(prompt=out.prompt_tokens,
                                       completion=out.completion_tokens or len(out.pieces)),
                    finish_reason="cancelled" if turn.cancelled else out.finish,
                    timings_ms=timer.total(),  # stored with the reply; final figures set below
                    tool_calls=[ToolRecord(**r.record()) for r in out.tool_results],
                )
                self._persist(text, reply, understood, out.extra)
            reply.timings_ms = timer.total()
            turn.reply = reply
        if reply.handoff:
            self._call_handoff_hooks(reply)

    def _chat_pieces(self, turn: TurnStream, messages: list[dict[str, Any]], out: _Generated,
                     first_choice: str = "auto") -> Iterator[str]:
        """The model's reply; with tools, the loop: the model calls, the tools run, their
        results join the conversation, and the model goes on, until it answers in text or
        ``tools.max_rounds`` rounds are spent (then it answers without tools).
        ``first_choice`` names a tool the model must call first (an intent routed to it)."""
        from skills.tools import direct_reply, run_tool

        settings = self.config.tools
        specs = [t.spec for t in self.tools.values()]
        conversation = list(messages)
        for round_number in range(settings.max_rounds + 1):
            offered = specs if round_number < settings.max_rounds else []
            if offered:
                choice = first_choice if round_number == 0 else "auto"
                options = self.config.generation
                if choice != "auto" and options.max_new_tokens < settings.call_max_tokens:
                    options = options.model_copy(update={"max_new_tokens": settings.call_max_tokens})
                generation = self.backend.stream(conversation, options, tools=offered, tool_choice=choice)
            else:  # a backend written before tools keeps working
                generation = self.backend.stream(conversation, self.config.generation)
            turn.follow(generation)
            said = []
            for piece in generation:
                said.append(piece)
                yield piece
            out.finish = generation.finish_reason or "stop"
            out.completion_tokens += generation.completion_tokens
            out.prompt_tokens = generation.prompt_tokens or out.prompt_tokens
            calls = generation.tool_calls if settings.parallel else generation.tool_calls[:1]
            if not calls or turn.cancelled:
                if out.finish == "tool_calls":
                    out.finish = "stop"
                return
            results = [run_tool(self.tools, call, timeout_s=settings.timeout_s) for call in calls]
            out.tool_results.extend(results)
            direct = direct_reply(self.tools, results)
            if direct is not None:  # return_direct tools: their results are the reply
                out.finish = "stop"
                before = "".join(said)
                yield direct if not before.strip() or before.endswith("\n") else "\n" + direct
                return
            conversation.append({"role": "assistant", "content": "".join(said),
                                 "tool_calls": [call.openai() for call in calls]})
            conversation.extend({"role": "tool", "tool_call_id": r.call.id, "name": r.call.name, "content": r.content}
                                for r in results)

    def _skill_pieces(self, turn: TurnStream, name: str, text: str, skill_text: str,
                      messages: list[dict[str, str]], recalled: list[MemoryRef], understood: Understood,
                      out: _Generated) -> Iterator[str]:
        """Run a skill; if it fails, say so and fall back to plain chat (the turn survives)."""
        from skills.base import SkillRequest

        skill = self.skills[name]
        history = [{"role": m["role"], "content": m["content"]} for m in messages[1:-1]]
        request = SkillRequest(
            text=skill_text, command=name if text.startswith("/") else None, user_id=turn.user_id,
            session_id=turn.session_id, backend=self.backend, memory=self.memory, config=self.config,
            options=self.config.generation, history=history, messages=messages, recalled=recalled,
            intent=understood.intent, vector=understood.vector, should_stop=lambda: turn.cancelled,
            progress=turn.progress,
        )
        produced: list[str] = []
        try:
            for piece in skill.run(request):
                produced.append(piece)
                yield piece
                if turn.cancelled:
                    out.finish = "cancelled"
                    break
        except Exception as exc:  # a broken skill must never end the session
            log.exception("skill %s failed", name)
            out.extra["skill_error"] = str(exc)
            yield f"\n\n(The {name} skill failed: {exc}. Answering without it.)\n\n"
            yield from self._chat_pieces(turn, messages, out)
            return
        finally:
            out.sources.extend(request.sources)
            out.extra.update(request.extra)
        out.completion_tokens += self.backend.count_tokens("".join(produced))

    def route(self, text: str, *, user_id: str = "local", session_id: str | None = None) -> str | None:
        """The skill this message would go to (None: plain chat), decided as a turn decides it
        (understanding, then routing) but without running anything or storing the message."""
        clean = normalize_text(text, self.config.max_input_chars)
        return self._route(clean, self._understand(clean, session_id), user_id)[0]

    # ---- stages ------------------------------------------------------------------------
    def _understand(self, text: str, session_id: str | None) -> Understood:
        vector = self.embedder.encode([text])[0] if self.embedder is not None else None
        if self.understanding is None:
            return Understood(vector=vector)
        prior = self.store.user_sentiments(session_id) if session_id is not None else []
        understood = self.understanding.analyze(text, vector, prior)
        understood.vector = vector
        return understood

    def _route(self, text: str, understood: Understood, user_id: str = "local") -> tuple[str | None, str]:
        """Pick a skill: a slash command first, then :func:`~agent.understand.routing.choose_skill`
        (a summarize request with its text, the intent -> skill map where the skill accepts the
        turn, a question the knowledge base answers), else chat.

        Returns the skill name (or None) and the text the skill or the chat should see: a
        slash command is removed from it.
        """
        if text.startswith("/"):
            # The command ends at any whitespace: "/check" may be followed by a newline and code.
            command, rest = (text[1:].split(maxsplit=1) + ["", ""])[:2]
            command = command.lower()
            for name, skill in self.skills.items():
                if command and command in (name, getattr(skill, "command", None)):
                    return name, rest.strip() or text
            return None, text
        if "memory" in self.skills and asks_what_is_remembered(text):
            return "memory", text
        forced = self._tool_route(understood)
        if forced is not None:
            return forced, text
        from agent.understand.routing import choose_skill

        has_kb = self._has_knowledge_base(user_id)
        routed = choose_skill(text, understood.intent, self.config.understanding, self.skills, has_knowledge_base=has_kb,
                              count_tokens=self.backend.count_tokens, memory=self.memory, user_id=user_id,
                              vector=understood.vector)
        return routed, text

    def _tool_route(self, understood: Understood) -> str | None:
        """``tool:NAME`` when the turn's intent routes to a tool (``understanding.routes:
        {order_status: tool:order_status}``): the model must then call that tool first."""
        intent = understood.intent
        target = self.config.understanding.routes.get(intent.label, "") if intent is not None else ""
        if not target.startswith(TOOL_ROUTE) or intent is None:
            return None
        if intent.score < self.config.understanding.min_route_confidence or target[len(TOOL_ROUTE):] not in self.tools:
            return None
        return target

    def _has_knowledge_base(self, user_id: str) -> bool:
        """Whether any documents (shared, or the user's own) could ground an answer."""
        if self.memory is None:
            return False
        try:
            return self.memory.has_documents(user_id)
        except MemoryStoreError as exc:
            log.warning("cannot tell whether documents exist (%s): routing without the knowledge base", exc)
            return False

    def _recall(self, text: str, user_id: str, understood: Understood) -> list[MemoryRef]:
        if self.memory is None or self.config.memory.k == 0:
            return []
        hits = self.memory.search(text, k=self.config.memory.k, user_id=user_id, vector=understood.vector)
        budget = self.config.memory.token_budget
        floor = self.config.memory.inject_min_similarity
        refs: list[MemoryRef] = []
        for hit in hits:
            similarity: Any = getattr(hit, "similarity", _UNKNOWN)  # a backend may not report one: no gate then
            if floor > -1.0 and similarity is not _UNKNOWN and (similarity is None or float(similarity) < floor):
                continue  # not about this turn (fused ranks rank the unrelated too); None: lexical match only
            cost = self.backend.count_tokens(hit.text)
            if cost > budget:
                continue
            budget -= cost
            refs.append(_ref(hit))
        return refs

    def _system_prompt(self, user_id: str, handoff: bool, summary: str) -> str:
        cfg = self.config
        system = render_persona(cfg.persona, {
            "agent_name": cfg.name, "instructions": cfg.instructions, "handoff": handoff,
            "user_id": user_id, "today": dt.date.today().isoformat(),
        })
        if summary:
            system += f"\n\nSummary of the earlier conversation:\n{summary}"
        return system

    def _budget(self) -> int:
        cfg = self.config
        window = cfg.model.context_window or self.backend.context_window
        budget = window - cfg.generation.max_new_tokens - 16
        if cfg.history.max_prompt_tokens:
            budget = min(budget, cfg.history.max_prompt_tokens)
        return max(budget, 64)

    def _prompt(self, text: str, session_id: str, user_id: str, recalled: list[MemoryRef],
                understood: Understood) -> tuple[list[dict[str, str]], int]:
        summary, upto = self.store.summary(session_id)
        history = [Turn(m.role, m.content, m.seq) for m in self.store.messages(session_id, after_seq=upto)]
        block = reference_block([(_label(r), r.text) for r in recalled])
        user_content = f"{block}\n\n{text}" if block else text
        count = self.backend.count_tokens
        reserve = self.config.history.summary_max_tokens + 16 if self.config.history.summarize_overflow else 0
        system = self._system_prompt(user_id, understood.handoff, summary)
        plan = plan_prompt(system, history, user_content, count=count, budget=self._budget(), summary_reserve=reserve)
        if plan.overflow and self.config.history.summarize_overflow:
            summary = self._fold_summary(summary, plan.overflow)
            self.store.set_summary(session_id, summary, plan.overflow[-1].seq)
            history = history[len(plan.overflow):]
            system = self._system_prompt(user_id, understood.handoff, summary)
            plan = plan_prompt(system, history, user_content, count=count, budget=self._budget(),
                               summary_reserve=0)
        return plan.messages, plan.prompt_tokens

    def _fold_summary(self, previous: str, turns: Sequence[Turn]) -> str:
        """Fold turns that no longer fit into the running summary (one model call)."""
        limit = self.config.history.summary_max_tokens
        budget = self._budget() - limit - 64
        body = transcript(turns)
        if previous:
            body = f"Earlier summary: {previous}\n{body}"
        while self.backend.count_tokens(body) > budget and len(body) > 200:
            body = body[len(body) // 4:]  # keep the most recent part of an oversize transcript
        messages = [
            {"role": "system", "content": "You write short, factual summaries of conversations."},
            {"role": "user", "content": "Summarize this conversation in a few sentences. Keep names, numbers, "
                                        f"facts and decisions.\n\n{body}"},
        ]
        options = GenerationOptions(temperature=0.0, max_new_tokens=limit, repetition_penalty=1.1)
        try:
            summary = self.backend.stream(messages, options).text().strip()
        except LlmosError as exc:
            log.warning("could not summarise older turns (%s); keeping the previous summary", exc)
            return previous
        return summary or previous

    def _persist(self, text: str, reply: Reply, understood: Understood, extra: dict[str, Any]) -> None:
        user_meta: dict[str, Any] = {}
        if understood.intent is not None:
            user_meta["intent"] = understood.intent.model_dump()
        if understood.sentiment is not None:
            user_meta["sentiment"] = understood.sentiment.model_dump()
            user_meta["sentiment_score"] = understood.sentiment.score
        reply_meta = reply.model_dump(include={"intent", "sentiment", "frustration", "skill", "memories",
                                               "handoff", "tokens", "finish_reason", "timings_ms", "tool_calls"})
        if extra:
            reply_meta["extra"] = extra
        self.store.add_turn(reply.session_id, text, reply.text, user_meta=user_meta, reply_meta=reply_meta)
        # Long-term memory keeps what the user said, not commands to skills ("/qa ...") or
        # questions about the memory itself (listing them would list themselves next time).
        if self.memory is not None and not text.startswith("/") and reply.skill != "memory" and (
                self.config.memory.remember == "all" or worth_remembering(text, understood.intent)):
            try:
                self.memory.add(text, user_id=reply.user_id, session_id=reply.session_id, kind="turn",
                                vector=understood.vector)
            except LlmosError as exc:
                log.error("the turn was saved but not added to memory: %s", exc)

    def _call_handoff_hooks(self, reply: Reply) -> None:
        for hook in self.on_handoff:
            try:
                hook(reply)
            except Exception:  # a broken hook must not break the conversation
                log.exception("handoff hook %r failed", hook)

    def close(self) -> None:
        self.store.close()
        for part in (self.memory, self.backend, *self.tools.values()):  # tools: MCP connections
            close = getattr(part, "close", None)
            if callable(close):
                close()


_UNKNOWN = object()

TOOL_ROUTE = "tool:"
"""A route target that names a tool instead of a skill (``understanding.routes``)."""


def _tools(config: AgentConfig, given: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any]:
    """The agent's tools by name: those passed in, else those the config lists (entry points,
    import paths) and the tools of its MCP servers."""
    if given is not None:
        items = list(given.values()) if isinstance(given, Mapping) else list(given)
        from skills.tools import FunctionTool, Tool

        wrapped = [t if isinstance(t, Tool) else FunctionTool(t) for t in items]
        return {t.spec.name: t for t in wrapped}
    if not config.tools.enabled and not config.tools.mcp:
        return {}
    from skills.tools import load_tools

    tools = load_tools(config.tools.enabled)
    if config.tools.mcp:
        from skills.mcp import mcp_tools

        served = mcp_tools(config.tools.mcp)
        clash = sorted(set(served) & set(tools))
        if clash:
            for started in served.values():  # stop the servers just started
                started.close()
            raise ConfigError(f"an MCP server and the configured tools both have {', '.join(map(repr, clash))}: "
                              "rename one (@tool(name=...)) or leave one out")
        tools.update(served)
    return tools


def _with_model_sampling(config: AgentConfig, backend: Any) -> AgentConfig:
    """``config`` with the backend's model sampling defaults (``sampling_defaults``, e.g. the
    embedded model's measured greedy decoding) for every generation option the config does
    not set itself: an explicit ``generation.temperature`` (file or environment) wins."""
    defaults = getattr(backend, "sampling_defaults", None)
    if not isinstance(defaults, dict) or not defaults:
        return config
    explicit = config.generation.model_fields_set
    chosen = {k: v for k, v in defaults.items() if k not in explicit and k in GenerationOptions.model_fields}
    if not chosen:
        return config
    generation = GenerationOptions.model_validate({**config.generation.model_dump(), **chosen})
    return config.model_copy(update={"generation": generation})


class _Generated:
    """What the generate stage produced, filled in as it streams."""

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.pieces: list[str] = []
        self.first_ms: float | None = None
        self.finish = "stop"
        self.sources: list[MemoryRef] = []
        self.extra: dict[str, Any] = {}
        self.tool_results: list[Any] = []


def _merge_refs(first: list[MemoryRef], second: list[MemoryRef]) -> list[MemoryRef]:
    seen = {(r.kind, r.id) for r in first}
    return first + [r for r in second if (r.kind, r.id) not in seen]


def _ref(hit: Any) -> MemoryRef:
    return MemoryRef(id=int(hit.id), text=str(hit.text), score=float(hit.score), kind=str(hit.kind),
                     source=getattr(hit, "source", None))


def _label(ref: MemoryRef) -> str:
    return f"{ref.kind}: {ref.source}" if ref.source else ref.kind
