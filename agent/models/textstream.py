"""Turning a stream of token ids into a stream of text pieces.

Two problems every streaming generator has: a token may end in the middle of a UTF-8
character (so decoding token by token prints garbage), and a stop string may span several
tokens (so text that could be the start of a stop string must be held back until it is
clear it is not one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from agent.toolcalls import ToolCall

__all__ = ["IncrementalDecoder", "StopStringFilter", "stream_text"]


class IncrementalDecoder:
    """Decode a growing list of token ids into new text, a window at a time.

    Keeps two offsets into the ids (the approach text-generation-inference uses) so each
    step decodes only a few tokens, and holds back text ending in U+FFFD (an incomplete
    multi-byte character).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self._ids.append(int(token_id))
        prefix_text = self._decode(self._ids[self._prefix:self._read])
        new_text = self._decode(self._ids[self._prefix:])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            piece = new_text[len(prefix_text):]
            self._prefix = self._read
            self._read = len(self._ids)
            return piece
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end of generation."""
        prefix_text = self._decode(self._ids[self._prefix:self._read])
        new_text = self._decode(self._ids[self._prefix:])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text):] if len(new_text) > len(prefix_text) else ""


class StopStringFilter:
    """Pass text through until a stop string appears; hold back possible stop prefixes."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        if not self.stops:
            return text
        buf = self._pending + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        hold = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buf)), 0, -1):
                if buf.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        self._pending = buf[len(buf) - hold:] if hold else ""
        return buf[:len(buf) - hold] if hold else buf

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


def stream_text(token_ids: Iterable[int], tokenizer: Any, stops: Sequence[str] = ()) -> Iterator[str]:
    """Yield text pieces for ``token_ids``, ending early at the first stop string.

    Closing this generator closes ``token_ids`` too, which is how generation is
    cancelled when a stop string is found.
    """
    decoder = IncrementalDecoder(tokenizer)
    stop = StopStringFilter(stops)
    ids = iter(token_ids)
    try:
        for token_id in ids:
            piece = stop.feed(decoder.push(token_id))
            if piece:
                yield piece
            if stop.stopped:
                return
        tail = stop.feed(decoder.flush()) + stop.flush()
        if tail:
            yield tail
    finally:
        close = getattr(ids, "close", None)
        if close is not None:
            close()


class TextStream:
    """An iterator of text pieces from one generation, with its token counts.

    ``prompt_tokens``, ``completion_tokens``, ``finish_reason`` (`stop`, `length`,
    `cancelled`, or `tool_calls` when the model called tools) and ``tool_calls`` (the
    :class:`~agent.toolcalls.ToolCall` list; the pieces carry only the text around the calls)
    are final once the iterator is exhausted. ``cancel()`` may be called from any thread:
    generation stops before the next token.
    """

    def __init__(self, prompt_tokens: int = 0) -> None:
        import threading

        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []
        self._cancel = threading.Event()
        self._pieces: Iterator[str] = iter(())

    def attach(self, pieces: Iterator[str]) -> TextStream:
        self._pieces = pieces
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._pieces)
        except StopIteration:
            if self.finish_reason is None:
                self.finish_reason = "cancelled" if self.cancelled else "stop"
            raise

    def close(self) -> None:
        """Stop reading: generation ends and the model is free for the next one. A stream
        closed before it finished reports ``finish_reason == "cancelled"``."""
        if self.finish_reason is None:
            self._cancel.set()
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()
        self._pieces = iter(())
        if self.finish_reason is None:
            self.finish_reason = "cancelled"

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def text(self) -> str:
        """Consume the rest of the stream and return it joined."""
        return "".join(self)


__all__ += ["TextStream"]
