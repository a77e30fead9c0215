"""The /chat page: in Debian's Chromium (Playwright) against the real app served by uvicorn, with
the real worker and tiny model behind it; and who may open it (loopback, or the admin sign-in)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from bot.kernel.messages import ConversationKey, Platform
from bot.web.app import create_app
from storage.history import RedisHistory
from tests.helpers.waiting import wait_until

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture()
def chat_app(qwen_service):
    return create_app(qwen_service.settings.model_copy(update={"web_chat": True}))


def test_a_message_and_a_photo_are_sent_and_answered(chat_app, qwen_service, tmp_path):
    # Skips, as the console's browser tests do, without Playwright or Debian's Chromium.
    browser_tests = pytest.importorskip("tests.admin.test_console_browser")
    CHROMIUM, CHROMIUM_ARGS = browser_tests.CHROMIUM, browser_tests.CHROMIUM_ARGS
    Server, playwright_api = browser_tests.Server, browser_tests.playwright_api
    expect = playwright_api.expect
    photo = tmp_path / "rendang.jpg"
    Image.new("RGB", (800, 600), "saddlebrown").save(photo, format="JPEG")
    with Server(chat_app) as server, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 900, "height": 700}, locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(f"{server.url}/chat")
        page.fill("#text", "Halo! Bagaimana cara membuat rendang daging sapi yang empuk?")
        page.click("#send")
        page.locator(".msg.bot").first.wait_for()
        # A locator assertion, not wait_for_function: the page's CSP forbids eval.
        expect(page.locator("#typing")).to_have_text("", timeout=90_000)

        page.set_input_files("#file", str(photo))
        page.fill("#text", "Ini gambar apa?")
        page.click("#send")
        page.locator(".msg.bot").nth(1).wait_for()
        # A locator assertion, not wait_for_function: the page's CSP forbids eval.
        expect(page.locator("#typing")).to_have_text("", timeout=90_000)
        assert page.locator(".msg.user img").count() == 1
        assert page.locator(".msg.user").count() == 2
        assert page.locator(".msg.bot").count() == 2
        assert all(t.strip() for t in page.locator(".msg.bot").all_inner_texts())
        assert page.inner_text("#error") == ""
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "web-chat.png"))
        chat = next(c["value"] for c in context.cookies() if c["name"] == "sealion_chat")
        context.close()
        browser.close()

    client = redis.Redis.from_url(qwen_service.redis_url)
    key = ConversationKey(platform=Platform.WEB, bot_id="local", chat_id=chat, user_id=chat)
    history = RedisHistory(client, ttl=3600, max_turns=50)
    # The history is written just after the reply is sent.
    entries = wait_until(lambda: (e := history.load(key)) and len(e) >= 4 and e, 15,
                         "the second turn in the history")
    client.close()
    assert [e.role for e in entries] == ["user", "assistant", "user", "assistant"]
    assert entries[0].language == "id"
    assert entries[2].text == "Ini gambar apa?" and len(entries[2].image_ids) == 1


def test_only_this_machine_or_a_signed_in_admin_may_chat(qwen_service, tmp_path):
    settings = qwen_service.settings.model_copy(update={"web_chat": True})
    local = TestClient(create_app(settings), base_url="http://127.0.0.1:8080",
                       client=("127.0.0.1", 40000))
    assert local.get("/chat").status_code == 200
    # Through a proxy, or from another address: refused (the console is off here).
    assert local.get("/chat", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    remote = TestClient(create_app(settings), client=("203.0.113.9", 40000))
    assert remote.get("/chat").status_code == 403
    assert remote.post("/chat/api/messages", data={"text": "hi"}).status_code == 403
    # With the console on, a remote browser must sign in first.
    with_admin = settings.model_copy(update={
        "admin_password": SecretStr("a-long-enough-password"), "data_dir": str(tmp_path)})
    remote = TestClient(create_app(with_admin), client=("203.0.113.9", 40000))
    answer = remote.get("/chat/api/events")
    assert answer.status_code == 401 and "/admin/login" in answer.json()["detail"]
    # Off unless WEB_CHAT; never a webhook.
    off = TestClient(create_app(qwen_service.settings.model_copy(update={"web_chat": False})),
                     base_url="http://127.0.0.1:8080", client=("127.0.0.1", 40000))
    assert off.get("/chat").status_code == 404
    assert local.post("/webhooks/web", content=b"{}").status_code == 404


def test_bad_requests_are_refused_politely(qwen_service):
    app = create_app(qwen_service.settings.model_copy(update={"web_chat": True}))
    client = TestClient(app, base_url="http://localhost:8080", client=("127.0.0.1", 40000))
    assert client.get("/chat").status_code == 200  # sets the conversation cookie
    assert client.post("/chat/api/messages", data={"text": "  "}).status_code == 400
    assert client.post("/chat/api/messages", data={"text": "hi"},
                       files={"file": ("x.zip", b"PK\x03\x04", "application/zip")}
                       ).status_code == 415
    assert client.post("/chat/api/messages", data={"text": "hi"},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/chat/api/events", params={"after": "$"}).status_code == 400
    assert client.get("/chat/api/events").json()["events"] == []


def test_a_message_while_redis_is_away_is_refused_with_503(qwen_service):
    from bot.cli.embedded_redis import free_port

    away = qwen_service.settings.model_copy(update={
        "web_chat": True, "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = TestClient(create_app(away), base_url="http://localhost:8080",
                        client=("127.0.0.1", 40000),
                        cookies={"sealion_chat": "a-chat-cookie-of-22ch"})
    answer = client.post("/chat/api/messages", data={"text": "Halo?"})
    assert answer.status_code == 503 and "try again" in answer.json()["detail"]
