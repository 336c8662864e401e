"""Plain text out of .txt, .md, .html and .pdf files, with page numbers for PDFs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from agent.errors import MemoryStoreError

__all__ = ["SUPPORTED_SUFFIXES", "Segment", "read_document"]

SUPPORTED_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"})


@dataclass(frozen=True)
class Segment:
    """A stretch of a document's text; ``page`` is 1-based for PDFs, else ``None``."""

    text: str
    page: int | None = None
    lines: bool = True
    """Whether the text's lines are the file's lines (so a passage can be cited by line);
    False for text extracted from HTML, which is re-flowed."""


def read_document(path: Path) -> list[Segment]:
    """The text of a supported file (raises :class:`MemoryStoreError` saying what to do)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _read_pdf(path)
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MemoryStoreError(f"cannot read {path}: {exc}") from exc
    if suffix in (".html", ".htm"):
        return [Segment(html_to_text(raw), lines=False)]
    if suffix in (".md", ".markdown"):
        return [Segment(markdown_to_text(raw))]
    if suffix in (".txt", ".text"):
        return [Segment(raw)]
    raise MemoryStoreError(f"{path}: unsupported file type {suffix!r}; supported: "
                           f"{', '.join(sorted(SUPPORTED_SUFFIXES))}")


def _read_pdf(path: Path) -> list[Segment]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise MemoryStoreError("reading PDFs needs pypdf: pip install pypdf") from exc
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:
                raise MemoryStoreError(f"{path} is encrypted: save an unencrypted copy and add that") from exc
        return [Segment(page.extract_text() or "", page=i) for i, page in enumerate(reader.pages, start=1)]
    except MemoryStoreError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError) as exc:
        raise MemoryStoreError(f"cannot read the PDF {path}: {exc}. Is it damaged? Re-export it, or "
                               "convert it to text and add the .txt") from exc


def _blank_lines(match: re.Match[str]) -> str:
    return "\n" * match.group(0).count("\n")


# Every rule keeps the line count, so a passage's line numbers are the file's line numbers.
_MD_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\A---\n.*?\n---\n", re.S), _blank_lines),         # YAML front matter
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),               # images: keep the alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),                # links: keep the label
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]*(.*?)[ \t]*#*[ \t]*$", re.M), r"\1."),  # headings end a sentence
    (re.compile(r"^[ \t]{0,3}(```|~~~).*$", re.M), ""),              # code fences
    (re.compile(r"(\*\*|__|`)"), ""),                             # emphasis and inline code marks
    (re.compile(r"<[^>\n]+>"), ""),                               # inline HTML tags
)


def markdown_to_text(text: str) -> str:
    """Markdown with its markup removed: the words stay, and every line stays on its line
    (citations count lines in this text)."""
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "section", "article", "header", "footer", "h1", "h2", "h3",
              "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol", "dd", "dt", "title", "main"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skipping:
            self._skipping -= 1
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML page (scripts and styles dropped), title first."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    body = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    body = re.sub(r" *\n *", "\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    title = parser.title.strip()
    return f"{title}.\n\n{body}" if title and not body.startswith(title) else body
