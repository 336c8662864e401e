"""From a blocking generation on a worker thread to server-sent events on the event loop.

A turn (or a plain model stream) is a blocking iterator. :class:`Pump` starts it on the
server's worker pool (session lookup, input checks: the ``start`` step) and iterates it on
the same worker, handing pieces to the event loop. If the client goes away, the response
generator is closed; its ``finally`` calls :meth:`Pump.cancel`, which cancels the
generation (thread-safe). The worker then finishes the iteration itself, so the dialogue
manager stores the partial reply as a cancelled turn and releases the session lock: the
session stays consistent and the next turn runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from agent.options import GenerationOptions
from agent.server.errors import ClientGone
from agent.server.overrides import request_options

__all__ = ["Pump", "Source", "sse", "SSE_DONE", "SSE_HEADERS", "ClientGone", "start_pump"]

log = logging.getLogger(__name__)

SSE_DONE = "data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: dict[str, Any]) -> str:
    """One server-sent event carrying ``payload`` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


@dataclass
class Source:
    """A started generation: its pieces, how to cancel it, what to do after the last piece
    (its result is the ``done`` value), and anything the route wants to keep (``info``)."""

    pieces: Iterable[str]
    cancel: Callable[[], None]
    finish: Callable[[], Any]
    info: Any = None


class Pump:
    """Run ``start()`` then its pieces on ``executor``, one worker job for the whole request.

    ``await pump.started()`` returns the :class:`Source` (or raises what ``start`` raised,
    so the route can still answer with an HTTP error). Then ``async for kind, value in pump``
    yields ``("pieces", [str, ...])`` (every piece that arrived since the last read), then
    ``("done", source.finish())`` or ``("error", exception)``. ``on_exit`` runs on the worker
    when it is done, whichever way.

    Pieces are handed over in batches, at most one every ``flush_s`` seconds: the first piece
    goes out at once (time to first token is untouched), later ones are gathered until the
    interval since the last hand-over has passed, and the end goes out at once. A wake-up of
    the event loop and a network write cost the server about as much CPU as everything else
    in a request, so a 24-piece reply costs ~10 of each instead of 24, and under load every
    client's latency gains. ``flush_s=0`` hands over as fast as the loop looks.
    """

    def __init__(self, start: Callable[[], Source], *, executor: Executor, options: GenerationOptions | None = None,
                 on_exit: Callable[[], None] | None = None, flush_s: float = 0.0) -> None:
        self._start = start
        self._flush_s = flush_s
        self._next_flush = 0.0  # event-loop time before which pieces wait for company
        self._pieces_wanted = True  # False: nobody reads pieces one by one (a non-streamed reply)
        self.ended = False
        """True once the end has been read: pieces yielded now are the last ones."""
        self._options = options
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._source: Source | None = None
        self._start_error: BaseException | None = None
        self._buffer: list[str] = []
        self._end: tuple[str, Any] | None = None
        self._woken = False
        self._ready = asyncio.Event()
        self._began = asyncio.Event()
        self._over = False
        self.future = self._loop.run_in_executor(executor, self._work)

    def _wake(self, event: asyncio.Event, *, now: bool = True) -> None:
        """On the worker, with the lock held: make sure the event loop will look (``now``,
        or for new pieces when the flush interval allows)."""
        target = event.set
        if not now:
            if self._woken or not self._pieces_wanted:
                return
            self._woken = True
            target = self._schedule
        try:
            self._loop.call_soon_threadsafe(target)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody listens
            pass

    def _schedule(self) -> None:
        """On the event loop: hand the waiting pieces over now, or when the interval is up."""
        delay = self._next_flush - self._loop.time()
        if delay <= 0:
            self._ready.set()
        else:
            self._loop.call_later(delay, self._ready.set)

    def _work(self) -> None:
        try:
            with request_options(self._options):
                try:
                    source = self._start()
                except BaseException as exc:
                    with self._lock:
                        self._start_error = exc
                        self._wake(self._began)
                    return
                with self._lock:
                    self._source = source
                    self._wake(self._began)
                end = self._iterate(source)
        finally:
            # Tied to the generation, not the response: a response that never starts
            # streaming (the client left first) still gives its slot back.
            if self._on_exit is not None:
                self._on_exit()
        with self._lock:
            self._end = end
            self._wake(self._ready)

    def _iterate(self, source: Source) -> tuple[str, Any]:
        try:
            for piece in source.pieces:
                if piece:
                    with self._lock:
                        self._buffer.append(piece)
                        self._wake(self._ready, now=False)
            return "done", source.finish()
        except BaseException as exc:  # handed to the event loop, rendered as an error event
            return "error", exc

    async def started(self) -> Source:
        await self._began.wait()
        if self._start_error is not None:
            self._over = True
            raise self._start_error
        assert self._source is not None
        return self._source

    async def __aiter__(self) -> AsyncIterator[tuple[str, Any]]:
        while not self._over:
            await self._ready.wait()
            with self._lock:
                self._ready.clear()
                self._woken = False
                pieces, self._buffer = self._buffer, []
                end = self._end
            self._next_flush = self._loop.time() + self._flush_s
            self.ended = end is not None
            if pieces:
                yield "pieces", pieces
            if end is not None:
                self._over = True
                yield end

    def cancel(self) -> None:
        """Stop generating (the client went away); safe to call more than once."""
        if not self._over and self._source is not None:
            self._over = True
            try:
                self._source.cancel()
            except Exception:  # cancelling must never raise into the response's cleanup
                log.exception("cancelling a generation failed")

    async def drain(self) -> None:
        """Wait until the worker has finished (tests and shutdown use this)."""
        await self.future

    async def result(self, is_disconnected: Callable[[], Awaitable[bool]], *, poll_s: float = 0.25) -> Any:
        """Wait for the end and return the ``done`` value (or raise the error): a response
        that is not streamed. If the client goes away first, the generation is cancelled,
        as for a stream (the turn is stored as cancelled), and :class:`ClientGone` raised."""
        async def last() -> Any:
            await self.started()  # what start() raised (an unknown session...) is the answer
            async for kind, value in self:
                if kind == "error":
                    raise value
                if kind == "done":
                    return value
            raise ClientGone()

        self._pieces_wanted = False  # only the end matters: no wake-up per piece
        task = asyncio.ensure_future(last())
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            if await is_disconnected():
                self.cancel()
                await self.drain()
                task.cancel()
                raise ClientGone()


def start_pump(start: Callable[[], Source], *, executor: Executor, options: GenerationOptions | None,
               release: Callable[[], None], flush_s: float = 0.0) -> Pump:
    """A :class:`Pump` that gives the request's slot back (``release``) when its
    generation ends, or at once if the pump cannot be started."""
    try:
        return Pump(start, executor=executor, options=options, on_exit=release, flush_s=flush_s)
    except BaseException:
        release()
        raise

