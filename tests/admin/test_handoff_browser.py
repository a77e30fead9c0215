"""The hand-off in a real browser (Chromium via Playwright, the console served by uvicorn, the
fixtures of test_console_browser.py): take over from a conversation page, see the waiting count,
get a new message on the page without navigating (the console's one script polls), release."""

from __future__ import annotations

import pytest

from tests.admin.test_console_browser import BUDI, PASSWORD, console, page  # noqa: F401
from tests.helpers.conversation_log import turn

pytestmark = pytest.mark.e2e


def test_take_over_a_conversation_and_see_it_live(console, page):  # noqa: F811
    base = console["url"]
    page.goto(f"{base}/admin/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin")
    assert page.locator("#waiting").inner_text() == "Waiting for a person (0)"

    page.click("a:has-text('Budi Santoso')")
    page.wait_for_url(f"{base}/admin/conversations/*")
    page.click("button:has-text('Take over')")
    page.wait_for_selector("#held-state")
    assert page.locator("#waiting").inner_text() == "Waiting for a person (1)"

    # A message arrives while the page is open: it shows up without a navigation.
    page.evaluate("window.__stay = 1")
    turn(console["log"], BUDI, "Halo? Ada orang di sana?", "", name="Budi Santoso",
         language="id")
    page.wait_for_selector(".msg.in:has-text('Ada orang di sana?')", timeout=20_000)
    assert page.evaluate("window.__stay") == 1

    page.click("button:has-text('Release to the bot')")
    page.wait_for_selector("button:has-text('Take over')")
    assert page.locator("#waiting").inner_text() == "Waiting for a person (0)"
