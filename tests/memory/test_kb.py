"""The knowledge base: .txt, .md, .html and .pdf files in, cited passages out."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import InputError
from memory import MemoryStore
from memory.chunking import chunk_text, sentence_spans
from memory.kb import ingest_paths, list_documents, remove_documents, search_documents
from memory.readers import html_to_text, markdown_to_text, read_document
from tests.helpers.documents import make_pdf


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "refunds.txt").write_text("Refunds are paid within 14 days.\nAsk support for a refund form.\n")
    (folder / "setup.md").write_text("# Installing\n\nRun `pip install widget`. See [the guide](http://x).\n\n"
                                      "## Licence\n\nThe widget is MIT licensed.\n")
    (folder / "sub" / "hours.html").write_text(
        "<html><head><title>Opening hours</title><style>p{color:red}</style></head><body>"
        "<h1>Hours</h1><p>The shop opens at 9&nbsp;am on weekdays.</p><script>var x=1;</script></body></html>")
    (folder / "sub" / "manual.pdf").write_bytes(make_pdf(["The boiler reset button is red.",
                                                          "Descale the kettle every month."]))
    (folder / ".hidden.txt").write_text("never ingested")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def test_ingest_a_folder_of_mixed_files(store: MemoryStore, docs: Path) -> None:
    report = ingest_paths(store, [docs], progress=False)
    assert (report.files, report.skipped) == (4, [])
    assert int(report) == report.chunks >= 5
    sources = {Path(d.source).name for d in list_documents(store)}
    assert sources == {"refunds.txt", "setup.md", "hours.html", "manual.pdf"}

    pdf_hit = search_documents(store, "how do I descale the kettle", k=1, user_id="ann")[0]
    assert pdf_hit.kind == "document" and pdf_hit.locator == "page 2" and pdf_hit.user_id is None
    assert pdf_hit.citation is not None and pdf_hit.citation.endswith("manual.pdf (page 2)")
    html_hit = search_documents(store, "when does the shop open", k=1)[0]
    assert "9 am" in html_hit.text.replace("\xa0", " ") and "color" not in html_hit.text
    txt_hit = search_documents(store, "refund form", k=1)[0]
    assert txt_hit.locator in ("line 1", "lines 1-2")


def test_adding_again_skips_unchanged_and_replaces_changed_files(store: MemoryStore, docs: Path) -> None:
    ingest_paths(store, [docs], progress=False)
    before = store.count(None)
    assert ingest_paths(store, [docs], progress=False).unchanged == 4
    assert store.count(None) == before
    (docs / "refunds.txt").write_text("Refunds now take 30 days.\n")
    report = ingest_paths(store, [docs / "refunds.txt"], progress=False)
    assert report.files == 1
    texts = [h.text for h in search_documents(store, "refunds days", k=10)]
    assert any("30 days" in t for t in texts) and not any("14 days" in t for t in texts)


def test_remove_a_file_or_a_folder(store: MemoryStore, docs: Path) -> None:
    ingest_paths(store, [docs], progress=False)
    chunks = {Path(d.source).name: d.chunks for d in list_documents(store)}
    total = store.count(None)
    # the passages removed: the file's, then the two files' under the folder
    assert remove_documents(store, [docs / "refunds.txt"]) == chunks["refunds.txt"] >= 1
    assert remove_documents(store, [docs / "sub"]) == chunks["hours.html"] + chunks["manual.pdf"] >= 2
    assert store.count(None) == total - chunks["refunds.txt"] - chunks["hours.html"] - chunks["manual.pdf"]
    assert {Path(d.source).name for d in list_documents(store)} == {"setup.md"}
    with pytest.raises(InputError, match="kb list"):
        remove_documents(store, [docs / "refunds.txt"])


def test_per_user_documents_are_private(store: MemoryStore, docs: Path) -> None:
    ingest_paths(store, [docs / "refunds.txt"], user_id="ann", progress=False)
    assert list_documents(store) == [] and len(list_documents(store, "ann")) == 1
    assert search_documents(store, "refund", user_id="ann")
    assert search_documents(store, "refund", user_id="bob") == []
    assert store.search("refund", user_id="bob") == []


def test_unreadable_files_are_reported_not_fatal(store: MemoryStore, tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "good.txt").write_text("A good file.")
    report = ingest_paths(store, [tmp_path / "broken.pdf", tmp_path / "empty.txt", tmp_path / "good.txt"],
                          progress=False)
    assert report.files == 1 and {Path(p).name for p, _ in report.skipped} == {"broken.pdf", "empty.txt"}
    with pytest.raises(InputError, match="does not exist"):
        ingest_paths(store, [tmp_path / "missing.txt"])
    with pytest.raises(InputError, match="unsupported"):
        (tmp_path / "x.docx").write_bytes(b"")
        ingest_paths(store, [tmp_path / "x.docx"])


def test_chunks_follow_sentences_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = chunk_text(text, size=200, overlap=60)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 200 and chunk.text.startswith("Sentence") and chunk.text.endswith(".")
        assert text[chunk.start:chunk.end] == chunk.text
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # overlap: the next passage repeats the end of this one
        assert b.start > a.start  # and always moves on
    assert chunk_text("", size=100) == []
    long_word_soup = "word " * 400
    assert all(len(c.text) <= 100 for c in chunk_text(long_word_soup, size=100, overlap=20))


def test_sentence_spans_split_on_paragraphs_lists_and_headings() -> None:
    text = "Intro line\n\n- item one\n- item two\n# Heading\nBody. More body!"
    pieces = [text[s:e] for s, e in sentence_spans(text)]
    assert pieces == ["Intro line", "- item one", "- item two", "# Heading\nBody.", "More body!"]


def test_readers_strip_markup() -> None:
    assert "pip install widget" in markdown_to_text("Run `pip install widget`")
    assert markdown_to_text("[label](http://example.com)") == "label"
    assert html_to_text("<p>a &amp; b</p><script>evil()</script>") == "a & b"


def test_pdf_pages_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "two.pdf"
    path.write_bytes(make_pdf(["first page text", "second page (with parens)"]))
    segments = read_document(path)
    assert [s.page for s in segments] == [1, 2]
    assert "second page (with parens)" in segments[1].text
