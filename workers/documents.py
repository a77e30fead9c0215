"""Documents from outside, read into text blocks that remember their page or section, and
packed into passages (the knowledge base's unit of retrieval).

    sniff            the format from the first bytes (PDF, DOCX), else the file name's extension
    read_document    PDF (text layer, page by page: pypdfium2), DOCX (python-docx, headings as
                     sections, tables as rows), Markdown (# headings), HTML (stdlib parser,
                     h1-h6 as sections, no script/style), plain text (UTF-8, UTF-16 with a BOM)
    passages         blocks packed into passages of at most `max_chars`, never across a page
                     or a section; passages under `MIN_PASSAGE` characters dropped

    read_for_chat    a file a person sent in chat (`ChatBudget`): its text, page by page, cut
                     to the turn's share of the prompt; pages with no text layer (scans)
                     rendered by pdfium, each within the pixel budget, at most `max_pages`

Every budget is declared (`DocumentBudget`, `ChatBudget`) and checked before the work it bounds: the bytes
before anything is opened, a PDF's page count before a page is read, a DOCX's zip directory
(entries, total uncompressed size, names) before it is unzipped, the characters as they are
extracted, a page's rendered size (from its declared size in points) before it is rendered.
Untrusted files are read in a decode process (`DecodeSandbox.run(read_document,
...)`): pdfium is C++ on bytes from outside.
"""

from __future__ import annotations

import enum
import html.parser
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from workers.images import PreparedImage, prepare_picture

#: Passages shorter than this (page numbers, stray headers) are not kept.
MIN_PASSAGE = 20
#: A DOCX may unzip to at most this many times its own size (a decompression bomb's mark).
DOCX_MAX_RATIO = 100
DOCX_MAX_ENTRIES = 1000


class Problem(enum.StrEnum):
    TOO_LARGE = "too_large"
    ENCRYPTED = "encrypted"
    UNREADABLE = "unreadable"
    UNSUPPORTED = "unsupported"


class DocumentError(ValueError):
    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail

    def __reduce__(self) -> tuple[type[DocumentError], tuple[Problem, str]]:
        # Raised in a decode process, it crosses back pickled: with its own arguments.
        return type(self), (self.problem, self.detail)


class Kind(enum.StrEnum):
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    TEXT = "text/plain"


@dataclass(frozen=True)
class DocumentBudget:
    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 500
    max_chars: int = 2_000_000


@dataclass(frozen=True)
class Block:
    text: str
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class ReadDocument:
    kind: Kind
    title: str | None
    pages: int | None
    blocks: tuple[Block, ...] = field(default_factory=tuple)


_EXTENSIONS = {".pdf": Kind.PDF, ".docx": Kind.DOCX, ".md": Kind.MARKDOWN,
               ".markdown": Kind.MARKDOWN, ".html": Kind.HTML, ".htm": Kind.HTML,
               ".txt": Kind.TEXT, ".text": Kind.TEXT}


def sniff(data: bytes, filename: str | None = None) -> Kind:
    head = data[:1024].lstrip()
    if data.startswith(b"%PDF-"):
        return Kind.PDF
    if data.startswith(b"PK\x03\x04"):
        return Kind.DOCX  # a zip: read_document checks that it is one
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    lowered = head[:64].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return Kind.HTML
    if suffix in ("", ".text"):
        return Kind.TEXT
    raise DocumentError(Problem.UNSUPPORTED, f"files of type {suffix!r}")


def read_document(data: bytes, filename: str | None = None,
                  budget: DocumentBudget = DocumentBudget()) -> ReadDocument:
    if len(data) > budget.max_bytes:
        raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_bytes} bytes")
    kind = sniff(data, filename)
    if kind is Kind.PDF:
        return _pdf(data, budget)
    if kind is Kind.DOCX:
        return _docx(data, budget)
    text = _decode_text(data)
    if len(text) > budget.max_chars:
        raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_chars} characters")
    if kind is Kind.HTML:
        return _html(text)
    if kind is Kind.MARKDOWN:
        return _markdown(text)
    return ReadDocument(kind=Kind.TEXT, title=None, pages=None,
                        blocks=tuple(Block(p) for p in _paragraphs(text)))


# --- formats ------------------------------------------------------------------------------------
def _open_pdf(data: bytes) -> Any:
    """The PDF in `data` (a pypdfium2 document), or DocumentError: ENCRYPTED or UNREADABLE."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError(Problem.ENCRYPTED, "the PDF needs a password") from exc
        raise DocumentError(Problem.UNREADABLE, "not a PDF that opens") from exc


def _pdf(data: bytes, budget: DocumentBudget) -> ReadDocument:
    pdf = _open_pdf(data)
    try:
        count = len(pdf)
        if count > budget.max_pages:  # before any page is read
            raise DocumentError(Problem.TOO_LARGE, f"{count} pages, over {budget.max_pages}")
        title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
        blocks: list[Block] = []
        chars = 0
        for index in range(count):
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            textpage.close()
            page.close()
            chars += len(text)
            if chars > budget.max_chars:
                raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_chars} characters")
            blocks.extend(Block(p, page=index + 1) for p in _paragraphs(text))
        return ReadDocument(kind=Kind.PDF, title=title, pages=count, blocks=tuple(blocks))
    finally:
        pdf.close()


def _docx(data: bytes, budget: DocumentBudget) -> ReadDocument:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            names = {e.filename for e in entries}
            if len(entries) > DOCX_MAX_ENTRIES:
                raise DocumentError(Problem.TOO_LARGE, f"{len(entries)} zip entries")
            if sum(e.file_size for e in entries) > DOCX_MAX_RATIO * max(len(data), 1024):
                raise DocumentError(Problem.TOO_LARGE, "unzips to too much")
            if any(n.startswith("/") or ".." in n.split("/") for n in names):
                raise DocumentError(Problem.UNREADABLE, "odd names in the zip")
            if "word/document.xml" not in names:
                raise DocumentError(Problem.UNSUPPORTED, "a zip, not a Word document")
    except zipfile.BadZipFile as exc:
        raise DocumentError(Problem.UNREADABLE, "not a zip that opens") from exc
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises lxml's and its own errors
        raise DocumentError(Problem.UNREADABLE, "not a Word document that opens") from exc
    title = (document.core_properties.title or "").strip() or None
    blocks: list[Block] = []
    section: str | None = None
    chars = 0
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        chars += len(text)
        if chars > budget.max_chars:
            raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_chars} characters")
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        if style.startswith("Heading") or style == "Title":
            section = text[:512]
            title = title or (text if style == "Title" else None)
            continue
        blocks.append(Block(text, section=section))
    for table in document.tables:
        for row in table.rows:
            text = " · ".join(c.text.strip() for c in row.cells if c.text.strip())
            chars += len(text)
            if chars > budget.max_chars:
                raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_chars} characters")
            if text:
                blocks.append(Block(text, section=section))
    return ReadDocument(kind=Kind.DOCX, title=title, pages=None, blocks=tuple(blocks))


_HEADING = re.compile(r"#{1,6}[ \t]+(.+)")


def _markdown(text: str) -> ReadDocument:
    title: str | None = None
    section: str | None = None
    blocks: list[Block] = []
    buffer: list[str] = []

    def flush() -> None:
        blocks.extend(Block(p, section=section) for p in _paragraphs("\n".join(buffer)))
        buffer.clear()

    for line in text.splitlines():
        heading = _HEADING.fullmatch(line.strip())
        if heading:
            flush()
            section = heading.group(1).strip().strip("#").strip()[:512]
            title = title or section
        else:
            buffer.append(line)
    flush()
    return ReadDocument(kind=Kind.MARKDOWN, title=title, pages=None, blocks=tuple(blocks))


class _HtmlText(html.parser.HTMLParser):
    SKIP = {"script", "style", "nav", "footer", "header", "noscript", "template"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
    BREAKS = {"p", "div", "li", "br", "tr", "section", "article", "td", "th", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping = 0
        self.heading: list[str] | None = None
        self.section: str | None = None
        self.title: str | None = None
        self.in_title = False
        self.buffer: list[str] = []
        self.blocks: list[Block] = []

    def flush(self) -> None:
        self.blocks.extend(Block(p, section=self.section)
                           for p in _paragraphs("".join(self.buffer)))
        self.buffer.clear()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.HEADINGS:
            self.flush()
            self.heading = []
        elif tag == "title":
            self.in_title = True
        elif tag in self.BREAKS:
            self.buffer.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in self.HEADINGS and self.heading is not None:
            self.section = " ".join("".join(self.heading).split())[:512] or self.section
            self.heading = None
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.in_title:
            self.title = (self.title or "") + data
        elif self.heading is not None:
            self.heading.append(data)
        else:
            self.buffer.append(data)


def _html(text: str) -> ReadDocument:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser.flush()
    title = " ".join((parser.title or "").split()) or None
    return ReadDocument(kind=Kind.HTML, title=title, pages=None, blocks=tuple(parser.blocks))


def _decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(Problem.UNREADABLE, "not UTF-16 text") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(Problem.UNREADABLE, "not UTF-8 text") from exc


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, their lines joined and spaces collapsed."""
    out = []
    for chunk in re.split(r"\n[ \t\r\f\v]*\n", text.replace("\r\n", "\n")):
        joined = " ".join(chunk.split())
        if joined:
            out.append(joined)
    return out


# --- passages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Passage:
    text: str
    page: int | None = None
    section: str | None = None


def passages(document: ReadDocument, max_chars: int = 800) -> list[Passage]:
    """Blocks packed in order into passages of at most `max_chars` (a longer paragraph is cut
    at sentence or word ends), never across a page or a section."""
    out: list[Passage] = []
    current: list[str] = []
    size = 0
    where: tuple[int | None, str | None] | None = None

    def flush() -> None:
        nonlocal size
        text = "\n".join(current).strip()
        if len(text) >= MIN_PASSAGE and where is not None:
            out.append(Passage(text, page=where[0], section=where[1]))
        current.clear()
        size = 0

    for block in document.blocks:
        place = (block.page, block.section)
        if place != where:
            flush()
            where = place
        for piece in _cut(block.text, max_chars):
            if size and size + len(piece) + 1 > max_chars:
                flush()
            current.append(piece)
            size += len(piece) + 1
    flush()
    return out


def _cut(text: str, max_chars: int) -> list[str]:
    pieces = []
    while len(text) > max_chars:
        window = text[:max_chars]
        cut = max(window.rfind(". "), window.rfind("。"), window.rfind("? "), window.rfind("! "))
        if cut < max_chars // 2:
            cut = window.rfind(" ")
        if cut < max_chars // 2:
            cut = max_chars - 1
        pieces.append(text[:cut + 1].strip())
        text = text[cut + 1:].strip()
    if text:
        pieces.append(text)
    return pieces


# --- documents sent in chat ---------------------------------------------------------------------
#: A PDF page with fewer characters than this in its text layer is taken for a scan.
MIN_PAGE_TEXT = 16
#: Longest side, in pixels, a scanned page is rendered at (about 200 dpi for A4): more does not
#: help the model, and the pixel budget usually binds first.
MAX_RENDER_SIDE = 2400
#: The types a chat file may declare and the name to read it by when its own says nothing.
_DECLARED = {"application/pdf": ".pdf", "application/x-pdf": ".pdf",
             Kind.DOCX.value: ".docx", "text/markdown": ".md", "text/x-markdown": ".md",
             "text/html": ".html", "text/plain": ".txt"}


@dataclass(frozen=True)
class ChatBudget:
    """What reading one file sent in chat may take, each checked before the work it bounds."""

    #: The file's size (MAX_DOWNLOAD_BYTES): checked before anything is opened.
    max_bytes: int
    #: Characters of text kept (DOCUMENT_MAX_TOKENS, about 4 characters a token); the rest is
    #: cut, and the reading says so.
    max_chars: int
    #: Scanned pages rendered (DOCUMENT_MAX_PAGES).
    max_pages: int = 5
    #: Pixels of a rendered page (MAX_IMAGE_PIXELS), from its declared size, before rendering.
    max_pixels: int = 1024 * 1024
    #: Pages whose text layer is read, at most (a 10,000-page PDF is not walked to its end).
    max_text_pages: int = 200
    #: Characters extracted in all before the reader stops (a DOCX or a text file).
    max_read_chars: int = 2_000_000


@dataclass(frozen=True)
class ChatDocument:
    """A file read for the model: its text (page or section marks kept), its scanned pages as
    images, and whether anything was left out (text past the budget, pages past the limit)."""

    kind: Kind
    pages: int | None
    text: str
    images: tuple[PreparedImage, ...] = ()
    #: The page number of each image.
    image_pages: tuple[int, ...] = ()
    cut: bool = False


def read_for_chat(data: bytes, name: str | None, mime_type: str | None,
                  budget: ChatBudget) -> ChatDocument:
    """Read a file a person sent; raises `DocumentError` (TOO_LARGE, ENCRYPTED, UNREADABLE,
    UNSUPPORTED) for one that cannot be read. Run in a decode process."""
    if len(data) > budget.max_bytes:
        raise DocumentError(Problem.TOO_LARGE, f"over {budget.max_bytes} bytes")
    declared = (mime_type or "").split(";")[0].strip().lower()
    suffix = PurePath(name or "").suffix.lower()
    filename = name if suffix in _EXTENSIONS else f"file{_DECLARED.get(declared, suffix)}"
    kind = sniff(data, filename)
    if kind is Kind.PDF:
        return _chat_pdf(data, budget)
    if (kind is not Kind.DOCX and not data.startswith((b"\xff\xfe", b"\xfe\xff"))
            and b"\x00" in data[:8192]):  # a binary file under a text file's name
        raise DocumentError(Problem.UNREADABLE, "binary, not text")
    document = read_document(data, filename, DocumentBudget(
        max_bytes=budget.max_bytes, max_chars=budget.max_read_chars))
    lines: list[str] = []
    section: str | None = None
    for block in document.blocks:
        if block.section and block.section != section:
            section = block.section
            lines.append(f"## {section}")
        lines.append(block.text)
    text, cut = _trim("\n\n".join(lines), budget.max_chars)
    return ChatDocument(kind=document.kind, pages=None, text=text, cut=cut)


def _chat_pdf(data: bytes, budget: ChatBudget) -> ChatDocument:
    pdf = _open_pdf(data)
    try:
        count = len(pdf)
        if count == 0:
            raise DocumentError(Problem.UNREADABLE, "a PDF without pages")
        parts: list[str] = []
        images: list[PreparedImage] = []
        image_pages: list[int] = []
        chars = 0
        cut = count > budget.max_text_pages
        for index in range(min(count, budget.max_text_pages)):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                words = " ".join(textpage.get_text_range().split())
                textpage.close()
                if len(words) >= MIN_PAGE_TEXT:
                    room = budget.max_chars - chars
                    kept, trimmed = _trim(words, room)
                    if kept:
                        parts.append(f"[page {index + 1}] {kept}")
                        chars += len(kept)
                    if trimmed:
                        cut = True
                        break
                elif len(images) < budget.max_pages:
                    images.append(_render(page, budget.max_pixels))
                    image_pages.append(index + 1)
                else:
                    cut = True  # a scanned page past DOCUMENT_MAX_PAGES
            finally:
                page.close()
        return ChatDocument(kind=Kind.PDF, pages=count, text="\n\n".join(parts),
                            images=tuple(images), image_pages=tuple(image_pages), cut=cut)
    finally:
        pdf.close()


def _render(page: object, max_pixels: int) -> PreparedImage:
    """The page as the model's image: its scale chosen from the declared size, so that the
    bitmap pdfium allocates is within `max_pixels` (and `MAX_RENDER_SIDE`) before it renders."""
    width, height = page.get_size()  # type: ignore[attr-defined]
    if not (width > 0 and height > 0):
        raise DocumentError(Problem.UNREADABLE, "a page without a size")
    scale = min(math.sqrt(max_pixels / (width * height)), MAX_RENDER_SIDE / max(width, height))
    pixels = max(1, int(width * scale)) * max(1, int(height * scale))
    if pixels > max_pixels:  # the declared budget, checked before the bitmap exists
        raise DocumentError(Problem.TOO_LARGE, f"a page of {pixels} pixels")
    bitmap = page.render(scale=scale)  # type: ignore[attr-defined]
    try:
        return prepare_picture(bitmap.to_pil(), max_pixels)
    finally:
        bitmap.close()


def _trim(text: str, max_chars: int) -> tuple[str, bool]:
    """`text` within `max_chars`, cut at a word's end when it must be; and whether it was."""
    if len(text) <= max_chars:
        return text, False
    if max_chars <= 0:
        return "", True
    window = text[:max_chars]
    space = window.rfind(" ")
    return (window[:space] if space > max_chars // 2 else window).rstrip(), True
