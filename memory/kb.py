"""The knowledge base: documents a user (or the agent's operator) adds, recalled with citations.

``ingest_paths`` reads files and folders (.txt, .md, .html, .pdf), cuts them into
overlapping passages and stores each as a ``document`` memory whose ``source`` is the
file's path and whose ``locator`` says where in it the passage is (``page 3``,
``lines 10-24``). ``user_id=None`` adds to the shared knowledge base every user of the
agent sees; a user id adds the user's own documents. Adding a file again replaces its
passages, or does nothing when the file has not changed. ``ingest_text`` does the same for a
document given as text (the server's uploads).

One knowledge base, two scopes: shared documents ground every user's answers; a user's own
(attached in the TUI, ``llmos kb add --user U``, uploaded for a user over HTTP) ground only
that user's. :func:`list_all_documents` lists both with their scope.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import InputError, LlmosError
from memory.chunking import chunk_text
from memory.readers import SUPPORTED_SUFFIXES, Segment, markdown_to_text, read_document
from memory.records import Hit, MemoryItem, namespace_for
from memory.store import MemoryStore

__all__ = ["IngestReport", "DocumentInfo", "ingest_paths", "ingest_text", "list_documents", "list_all_documents",
           "remove_documents", "search_documents", "collect_files"]

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingestion did. ``int(report)`` is the number of passages stored."""

    files: int = 0
    chunks: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) of files that could not be added."""

    def __int__(self) -> int:
        return self.chunks


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    bytes: int
    added_at: float
    user_id: str | None = None
    """Whose document it is: None for the shared knowledge base every user's answers draw on,
    else the user who attached it (only that user's answers draw on it)."""

    @property
    def scope(self) -> str:
        return "shared" if self.user_id is None else f"user {self.user_id}"


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """The supported files among ``paths``, folders searched recursively (hidden ones skipped)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"{path} does not exist: check the path")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            out.extend(found)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            out.append(path)
        else:
            raise InputError(f"{path}: unsupported file type; add {', '.join(sorted(SUPPORTED_SUFFIXES))} files")
    return list(dict.fromkeys(p.resolve() for p in out))


def _items(path: Path, size: int, overlap: int) -> list[MemoryItem]:
    return _passages(read_document(path), path.stem, size, overlap)


def _passages(segments: Sequence[Segment], stem: str, size: int, overlap: int) -> list[MemoryItem]:
    items = []
    title = re.sub(r"[_\-.]+", " ", stem)  # "refund_policy.md" is found by "refund policy"
    for segment in segments:
        text = segment.text
        for number, chunk in enumerate(chunk_text(text, size=size, overlap=overlap)):
            if segment.page is not None:
                locator = f"page {segment.page}"
            elif not segment.lines:
                locator = f"passage {number + 1}"
            else:
                first = text.count("\n", 0, chunk.start) + 1
                last = first + text.count("\n", chunk.start, chunk.end)
                locator = f"line {first}" if first == last else f"lines {first}-{last}"
            meta = {"chunk": number, "start": chunk.start, "end": chunk.end}
            if segment.page is not None:
                meta["page"] = segment.page
            items.append(MemoryItem(text=chunk.text, kind="document", locator=locator, meta=meta, context=title))
    return items


def _progress(files: Sequence[Path], progress: bool | None) -> Iterable[Path]:
    show = progress if progress is not None else (len(files) >= 20 and sys.stderr.isatty())
    if not show:
        return files
    from tqdm import tqdm

    return tqdm(files, desc="adding documents", unit="file", file=sys.stderr)


def ingest_paths(store: MemoryStore, paths: Iterable[str | Path], *, user_id: str | None = None,
                 progress: bool | None = None) -> IngestReport:
    """Add files and folders to the knowledge base (shared when ``user_id`` is None).

    A progress bar shows for large folders (``progress=None``: 20 files or more, on a
    terminal). A file that cannot be read is reported in ``skipped``, not fatal.
    """
    files = collect_files(paths)
    cfg = store.config
    report = IngestReport()
    for path in _progress(files, progress):
        source = str(path)
        try:
            data = path.read_bytes()
            added = _ingest(store, user_id, source, data,
                            functools.partial(_items, path, cfg.kb_chunk_chars, cfg.kb_overlap_chars))
        except (LlmosError, OSError) as exc:
            log.warning("skipping %s: %s", source, exc)
            report.skipped.append((source, str(exc)))
            continue
        if added is None:
            report.unchanged += 1
        elif added == 0:
            report.skipped.append((source, "no text found (a scanned PDF needs OCR first)"))
        else:
            report.files += 1
            report.chunks += added
    return report


def ingest_text(store: MemoryStore, name: str, text: str, *, user_id: str | None = None) -> int:
    """Add a document given as text (an upload): ``name`` is its source in citations; a name
    ending in .md or .markdown is read as Markdown. Adding a changed text under the same name
    replaces the old passages; the same text again changes nothing. Returns passages added."""
    if not name.strip() or "\x00" in name:
        raise InputError("a document needs a name (e.g. refund-policy.md): it is how answers cite it")
    if not text.strip():
        raise InputError(f"{name}: the document is empty")
    cfg = store.config
    markdown = name.lower().endswith((".md", ".markdown"))
    segments = [Segment(markdown_to_text(text) if markdown else text)]
    added = _ingest(store, user_id, name, text.encode("utf-8"),
                    lambda: _passages(segments, Path(name).stem, cfg.kb_chunk_chars, cfg.kb_overlap_chars))
    return added or 0


def _ingest(store: MemoryStore, user_id: str | None, source: str, data: bytes,
            passages: Callable[[], list[MemoryItem]]) -> int | None:
    """Store one document's passages, replacing an older version: the passage count, or None
    when the same bytes are already stored."""
    ns = namespace_for(user_id)
    digest = hashlib.sha256(data).hexdigest()
    known = store.db.document(ns, source)
    if known is not None and known[0] == digest:
        return None
    items = passages()
    if not items:
        return 0
    old = set(store.db.ids_where(ns, source=source))
    new = store.add_many(items, user_id=user_id, kind="document", source=source, shared=user_id is None)
    store.delete(old - set(new))  # after the new passages are in: never a gap
    with store.db.write(bump=False) as conn:
        store.db.put_document(conn, ns, source, digest, len(items), len(data), time.time())
    return len(items)


def list_documents(store: MemoryStore, user_id: str | None = None) -> list[DocumentInfo]:
    """The documents in the shared knowledge base (or in ``user_id``'s own)."""
    return [DocumentInfo(*row, user_id=user_id) for row in store.db.documents(namespace_for(user_id))]


def list_all_documents(store: MemoryStore, user_id: str | None = None) -> list[DocumentInfo]:
    """Every document with its scope, shared ones first, then each user's: of every user, or
    with ``user_id`` what that user's answers draw on (the shared ones and the user's own)."""
    owners = store.db.document_owners()
    users = sorted({u for u in owners.values() if u is not None})
    if user_id is not None:
        users = [user_id] if user_id in users else []
    out = list_documents(store, None)
    for user in users:
        out.extend(list_documents(store, user))
    return out


def remove_documents(store: MemoryStore, paths: Iterable[str | Path], *, user_id: str | None = None) -> int:
    """Remove documents (a file, every document under a folder, or an uploaded document by its
    name); return passages removed."""
    ns = namespace_for(user_id)
    known = [info.source for info in list_documents(store, user_id)]
    removed = 0
    for raw in paths:
        target = str(Path(raw).expanduser().resolve())
        matches = [str(raw)] if str(raw) in known else [
            s for s in known if s == target or s.startswith(target.rstrip("/") + "/")]
        if not matches:
            raise InputError(f"{raw} is not in the knowledge base; see `llmos kb list`")
        for source in matches:
            removed += store.delete(store.db.ids_where(ns, source=source))
            with store.db.write(bump=False) as conn:
                store.db.drop_document(conn, ns, source)
    return removed


def search_documents(store: MemoryStore, text: str, k: int = 5, *, user_id: str | None = None) -> list[Hit]:
    """Passages relevant to ``text``: the shared knowledge base plus ``user_id``'s documents."""
    return store.search(text, k=k, user_id=user_id, kinds=("document",))
