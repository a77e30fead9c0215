"""Files sent in chat, read for the model (#22; `workers.documents.read_for_chat`): a PDF's text
layer with its pages, scanned pages rendered within DOCUMENT_MAX_PAGES and MAX_IMAGE_PIXELS (the
pixels chosen from the page's declared size before pdfium renders), DOCX and text, the text cut
to its budget, and the files that cannot be read: encrypted, corrupt, oversized, unsupported.
The fixtures are made here (tests/helpers/documents.py), never downloaded."""

from __future__ import annotations

import io
import pickle

import pypdfium2 as pdfium
import pytest
from PIL import Image

from tests.helpers.documents import docx_file, encrypted_pdf, scanned_pdf, text_pdf
from workers.documents import ChatBudget, DocumentError, Kind, Problem, read_for_chat

BUDGET = ChatBudget(max_bytes=5 * 1024 * 1024, max_chars=6000, max_pages=5,
                    max_pixels=1024 * 1024)
PAGES = ["The clinic opens at eight in the morning on weekdays.",
         "Dental care costs 300 baht a visit, paid at the counter.",
         "Bring your identity card and the referral letter."]


def pixels(jpeg: bytes) -> int:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.width * image.height


def test_a_pdf_with_a_text_layer_is_read_page_by_page():
    document = read_for_chat(text_pdf(PAGES), "klinik.pdf", "application/pdf", BUDGET)
    assert (document.kind, document.pages, document.cut) == (Kind.PDF, 3, False)
    assert document.images == ()
    assert document.text.split("\n\n") == [f"[page {n}] {t}" for n, t in enumerate(PAGES, 1)]


def test_scanned_pages_become_images_within_the_page_and_pixel_budgets():
    document = read_for_chat(scanned_pdf(pages=7, size=(1700, 2200), resolution=200),
                             "scan.pdf", None, ChatBudget(max_bytes=BUDGET.max_bytes,
                                                          max_chars=6000, max_pages=5,
                                                          max_pixels=500_000))
    assert document.pages == 7 and document.text == ""
    assert document.image_pages == (1, 2, 3, 4, 5) and document.cut  # pages 6 and 7 left out
    for image in document.images:
        assert 400_000 < pixels(image.model_jpeg) <= 500_000
        assert pixels(image.thumbnail) <= 320 * 320


def test_a_page_is_rendered_at_a_scale_chosen_before_its_bitmap_exists(monkeypatch):
    """A page of 200 x 300 inches would be 311 million pixels at 72 dpi: the scale is chosen
    from its declared size, so pdfium never allocates more than the budget."""
    real = pdfium.PdfPage.render
    asked: list[int] = []

    def watched(page, scale=1, **kwargs):
        width, height = page.get_size()
        asked.append(int(width * scale) * int(height * scale))
        assert asked[-1] <= 1024 * 1024, "rendering past the pixel budget"
        return real(page, scale=scale, **kwargs)

    monkeypatch.setattr(pdfium.PdfPage, "render", watched)
    document = read_for_chat(scanned_pdf(pages=1, size=(2000, 3000), resolution=10),
                             "poster.pdf", "application/pdf", BUDGET)
    assert len(asked) == 1 and document.image_pages == (1,)
    assert pixels(document.images[0].model_jpeg) <= 1024 * 1024


def test_text_over_its_budget_is_cut_at_a_word_and_says_so():
    page = " ".join(f"word{i}" for i in range(100))  # 690 characters
    document = read_for_chat(text_pdf([page] * 4), "long.pdf", None,
                             ChatBudget(max_bytes=BUDGET.max_bytes, max_chars=2000))
    assert document.cut
    kept = document.text.split("\n\n")
    assert kept[:2] == [f"[page 1] {page}", f"[page 2] {page}"] and len(kept) == 3
    assert sum(len(p) - len("[page n] ") for p in kept) <= 2000
    last = kept[2].removeprefix("[page 3] ")
    assert page.startswith(last) and page[len(last)] == " "  # cut at a word's end


def test_a_docx_keeps_its_sections_and_tables():
    data = docx_file("Handbook", [("Opening hours", ["We open at eight."]),
                                  ("Fees", ["A visit costs 300 baht."])],
                     table=[["Dental", "300 baht"]])
    document = read_for_chat(data, "handbook.docx", None, BUDGET)
    assert document.kind is Kind.DOCX and not document.cut
    assert document.text == ("## Opening hours\n\nWe open at eight.\n\n## Fees\n\n"
                             "A visit costs 300 baht.\n\nDental · 300 baht")


@pytest.mark.parametrize(("name", "mime"), [("notes.txt", None), (None, "text/plain"),
                                            ("notes", "text/plain; charset=utf-8")])
def test_a_text_file_by_its_name_or_its_declared_type(name, mime):
    data = "Giờ mở cửa: 8 giờ sáng.\n\nPhí khám: 200.000 đồng.".encode()
    document = read_for_chat(data, name, mime, BUDGET)
    assert (document.kind, document.text) == (Kind.TEXT, "Giờ mở cửa: 8 giờ sáng.\n\n"
                                                          "Phí khám: 200.000 đồng.")


def test_an_encrypted_pdf_is_refused_as_such():
    data = encrypted_pdf("rahsia")
    assert pdfium.PdfDocument(data, password="rahsia")  # a real one: the password opens it
    with pytest.raises(DocumentError) as caught:
        read_for_chat(data, "results.pdf", "application/pdf", BUDGET)
    assert caught.value.problem is Problem.ENCRYPTED


@pytest.mark.parametrize(("data", "name"), [
    (text_pdf(PAGES)[:80], "broken.pdf"),
    (b"PK\x03\x04 not a zip at all", "letter.docx"),
    (b"\xff\xfe\x00\xd8 broken", "notes.txt"),
    (b"\x00\x01\x02 binary", "notes.txt"),
])
def test_a_corrupt_file_is_unreadable(data, name):
    with pytest.raises(DocumentError) as caught:
        read_for_chat(data, name, None, BUDGET)
    assert caught.value.problem is Problem.UNREADABLE


def test_an_oversized_file_is_refused_before_it_is_opened(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("opened a file over the byte budget")

    monkeypatch.setattr(pdfium, "PdfDocument", never)
    with pytest.raises(DocumentError) as caught:
        read_for_chat(text_pdf(PAGES), "big.pdf", None,
                      ChatBudget(max_bytes=200, max_chars=6000))
    assert caught.value.problem is Problem.TOO_LARGE


def test_a_file_of_another_kind_is_unsupported():
    with pytest.raises(DocumentError) as caught:
        read_for_chat(b"a,b\n1,2\n", "sheet.csv", "text/csv", BUDGET)
    assert caught.value.problem is Problem.UNSUPPORTED


def test_the_problem_crosses_back_from_a_decode_process():
    """The sandbox pickles what its process raised: the problem must survive (an encrypted
    file read as "unreadable" was the bug the end-to-end test found)."""
    error = pickle.loads(pickle.dumps(DocumentError(Problem.ENCRYPTED, "needs a password")))
    assert isinstance(error, DocumentError) and error.problem is Problem.ENCRYPTED
    assert str(error) == "encrypted: needs a password"
