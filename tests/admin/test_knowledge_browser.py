"""The Knowledge page in a real browser (Chromium through Playwright, the console's browser
test's fixtures): sign in, upload a Word file, open its passages, remove it."""

from __future__ import annotations

from tests.admin.test_console_browser import PASSWORD, console, page  # noqa: F401
from tests.helpers.documents import docx_file


def test_upload_open_and_remove_a_document(console, page, tmp_path):  # noqa: F811
    base = console["url"]
    handbook = tmp_path / "handbook.docx"
    handbook.write_bytes(docx_file("Clinic handbook", [
        ("Opening hours", ["The clinic is open Monday to Friday from 8 am to 5 pm."])]))
    page.goto(f"{base}/admin/knowledge")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/knowledge")
    assert "No documents yet" in page.locator("table").inner_text()

    page.set_input_files("input[name=file]", str(handbook))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("tr.document")
    assert page.locator(".notice").inner_text() == "Added #1 Clinic handbook."
    page.click("tr.document a:has-text('Clinic handbook')")
    page.wait_for_url(f"{base}/admin/knowledge/1")
    passage = page.locator(".passage").first
    assert "Opening hours" in passage.inner_text()
    assert "Monday to Friday" in passage.inner_text()

    page.goto(f"{base}/admin/knowledge")
    page.click("tr.document button:has-text('Remove')")
    page.wait_for_selector("text=No documents yet")
    assert page.locator(".notice").inner_text() == "Removed #1 Clinic handbook."
