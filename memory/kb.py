"""The knowledge base: documents a user (or the agent's operator) adds, recalled with citations.

``ingest_paths`` reads files and folders (.txt, .md, .html, .pdf), cuts them into
overlapping passages and stores each as a ``document`` memory whose ``source`` is the
file's path and whose ``locator`` says where in it the passage is (``page 3``,
``lines 10-24``). ``user_id=None`` adds to the shared knowledge base every user of the
agent sees; a user id adds the user's own documents. Adding a file again replaces its
passages, or does nothing when the file has not changed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import InputError, LlmosError
from memory.chunking import chunk_text
from memory.readers import SUPPORTED_SUFFIXES, read_document
from memory.records import Hit, MemoryItem, namespace_for
from memory.store import MemoryStore

__all__ = ["IngestReport", "DocumentInfo", "ingest_paths", "list_documents", "remove_documents",
           "search_documents", "collect_files"]

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
    items = []
    title = re.sub(r"[_\-.]+", " ", path.stem)  # "refund_policy.md" is found by "refund policy"
    for segment in read_document(path):
        text = segment.text
        for number, chunk in enumerate(chunk_text(text, size=size, overlap=overlap)):
            if segment.page is not None:
                locator = f"page {segment.page}"
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
    ns = namespace_for(user_id)
    cfg = store.config
    report = IngestReport()
    for path in _progress(files, progress):
        source = str(path)
        try:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            known = store.db.document(ns, source)
            if known is not None and known[0] == digest:
                report.unchanged += 1
                continue
            items = _items(path, cfg.kb_chunk_chars, cfg.kb_overlap_chars)
            if not items:
                report.skipped.append((source, "no text found (a scanned PDF needs OCR first)"))
                continue
            old = set(store.db.ids_where(ns, source=source))
            new = store.add_many(items, user_id=user_id, kind="document", source=source, shared=user_id is None)
            store.delete(old - set(new))  # after the new passages are in: never a gap
            with store.db.write(bump=False) as conn:
                store.db.put_document(conn, ns, source, digest, len(items), len(data), time.time())
        except (LlmosError, OSError) as exc:
            log.warning("skipping %s: %s", source, exc)
            report.skipped.append((source, str(exc)))
            continue
        report.files += 1
        report.chunks += len(items)
    return report


def list_documents(store: MemoryStore, user_id: str | None = None) -> list[DocumentInfo]:
    """The documents in the shared knowledge base (or in ``user_id``'s own)."""
    return [DocumentInfo(*row) for row in store.db.documents(namespace_for(user_id))]


def remove_documents(store: MemoryStore, paths: Iterable[str | Path], *, user_id: str | None = None) -> int:
    """Remove documents (a file, or every document under a folder); return passages removed."""
    ns = namespace_for(user_id)
    known = [info.source for info in list_documents(store, user_id)]
    removed = 0
    for raw in paths:
        target = str(Path(raw).expanduser().resolve())
        matches = [s for s in known if s == target or s.startswith(target.rstrip("/") + "/")]
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
