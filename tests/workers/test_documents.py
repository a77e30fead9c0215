"""Documents read into blocks with their pages and sections, under declared budgets, and packed
into passages (workers/documents.py)."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.helpers.documents import docx_file, scanned_pdf, text_pdf
from workers.documents import (
    DocumentBudget,
    DocumentError,
    Kind,
    Problem,
    passages,
    read_document,
    sniff,
)


def test_a_pdf_keeps_its_pages_and_title():
    data = text_pdf(["The clinic opens at eight in the morning.",
                     "Dental care costs 300 baht a visit."], title="Clinic handbook")
    document = read_document(data, "handbook.pdf")
    assert document.kind is Kind.PDF
    assert document.title == "Clinic handbook"
    assert document.pages == 2
    found = passages(document)
    assert [(p.page, p.text) for p in found] == [
        (1, "The clinic opens at eight in the morning."),
        (2, "Dental care costs 300 baht a visit.")]


def test_a_pdf_over_the_page_budget_is_refused_before_its_pages_are_read():
    data = text_pdf([f"Page number {i} of the long handbook." for i in range(6)])
    with pytest.raises(DocumentError) as caught:
        read_document(data, "long.pdf", DocumentBudget(max_pages=5))
    assert caught.value.problem is Problem.TOO_LARGE


def test_bytes_over_the_budget_are_refused_before_anything_is_opened():
    with pytest.raises(DocumentError) as caught:
        read_document(b"%PDF-" + b"x" * 5000, "big.pdf", DocumentBudget(max_bytes=1024))
    assert caught.value.problem is Problem.TOO_LARGE


def test_characters_over_the_budget_are_refused():
    with pytest.raises(DocumentError) as caught:
        read_document(("word " * 1000).encode(), "a.txt", DocumentBudget(max_chars=1000))
    assert caught.value.problem is Problem.TOO_LARGE


def test_a_corrupt_pdf_is_unreadable():
    data = text_pdf(["The clinic opens at eight in the morning."])
    with pytest.raises(DocumentError) as caught:
        read_document(data[:60], "broken.pdf")
    assert caught.value.problem is Problem.UNREADABLE


def test_a_scanned_page_has_no_text_passages():
    document = read_document(scanned_pdf(), "scan.pdf")
    assert document.pages == 1
    assert passages(document) == []


def test_a_docx_keeps_headings_as_sections_and_tables_as_rows():
    data = docx_file("Clinic handbook", [
        ("Opening hours", ["เปิดทุกวันจันทร์ถึงศุกร์ 8.00 ถึง 17.00 น."]),
        ("Fees", ["A consultation costs 150 baht for adults."])],
        table=[["Service", "Price"], ["Dental cleaning", "300 baht"]])
    document = read_document(data, "handbook.docx")
    assert document.kind is Kind.DOCX
    assert document.title == "Clinic handbook"
    found = [(p.section, p.text) for p in passages(document)]
    assert ("Opening hours", "เปิดทุกวันจันทร์ถึงศุกร์ 8.00 ถึง 17.00 น.") in found
    assert ("Fees", "A consultation costs 150 baht for adults.\nService · Price\n"
            "Dental cleaning · 300 baht") in found


def test_a_zip_bomb_is_refused_from_its_directory():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(DocumentError) as caught:
        read_document(out.getvalue(), "bomb.docx")
    assert caught.value.problem is Problem.TOO_LARGE


def test_markdown_and_html_sections():
    md = "# Handbook\n\n## Hours\n\nOpen from 8 to 5 every weekday.\n\n## Fees\n\n150 baht."
    document = read_document(md.encode(), "handbook.md")
    assert document.title == "Handbook"
    assert [(p.section, p.text) for p in passages(document)] == [
        ("Hours", "Open from 8 to 5 every weekday.")]  # "150 baht." is under MIN_PASSAGE
    page = ("<html><head><title>Clinic</title><script>var x = 'hidden text';</script></head>"
            "<body><nav>Home | About</nav><h2>Hours</h2><p>Open from 8 to 5 every weekday."
            "</p></body></html>")
    document = read_document(page.encode(), "clinic.html")
    assert document.title == "Clinic"
    assert [(p.section, p.text) for p in passages(document)] == [
        ("Hours", "Open from 8 to 5 every weekday.")]


def test_text_encodings_and_unsupported_types():
    assert sniff(b"hello", "notes.txt") is Kind.TEXT
    utf16 = "ราคา 150 บาท สำหรับผู้ใหญ่".encode("utf-16")
    assert passages(read_document(utf16, "a.txt"))[0].text == "ราคา 150 บาท สำหรับผู้ใหญ่"
    with pytest.raises(DocumentError) as caught:
        read_document(b"\xff\xfe\x00", "a.txt")
    assert caught.value.problem is Problem.UNREADABLE
    with pytest.raises(DocumentError) as caught:
        read_document(b"a,b\n1,2", "sheet.xlsx")
    assert caught.value.problem is Problem.UNSUPPORTED


def test_long_paragraphs_are_cut_into_passages_within_the_size():
    text = " ".join(f"Sentence number {i} about the clinic." for i in range(100))
    found = passages(read_document(text.encode(), "a.txt"), max_chars=300)
    assert len(found) > 5
    assert all(len(p.text) <= 300 for p in found)
    assert "".join(p.text.replace(" ", "") for p in found) == text.replace(" ", "")
