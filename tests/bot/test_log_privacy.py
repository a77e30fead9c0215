"""Logs without personal data (issue 12, hole 10): conversations under a keyed pseudonym, no
query strings in the access log (a real `sealion-bot api` process), and secrets redacted from
exception text and extra fields too."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from bot.kernel.logs import configure_logging, log_id_key
from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.settings import Settings
from tests.helpers.api_process import ApiProcess

WA_ID = "6281234567890"
APP_SECRET = "privacy-test-app-secret"
TOKEN = "7000001:AAprivacy-test-telegram-token"


def capture(settings: Settings) -> io.StringIO:
    configure_logging(settings, text=False)
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    return stream


def test_conversations_are_named_by_a_keyed_pseudonym():
    settings = Settings(_env_file=None, whatsapp_app_secret=APP_SECRET)
    configure_logging(settings)
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id="106540352242922", chat_id=WA_ID,
                          user_id=WA_ID)
    name = key.log_id()
    assert WA_ID not in name and name.startswith("whatsapp:")
    assert key.log_id() == name  # stable, so one conversation can be followed
    # Keyed: without the deployment's secret, nobody can hash phone numbers to match it.
    unkeyed = hashlib.sha256(key.as_path().encode()).hexdigest()[:16]
    assert name != f"whatsapp:{unkeyed}"
    # Every process of the deployment derives the same key; another deployment another one.
    assert log_id_key(settings) == log_id_key(Settings(_env_file=None,
                                                       whatsapp_app_secret=APP_SECRET))
    assert log_id_key(settings) != log_id_key(Settings(_env_file=None,
                                                       whatsapp_app_secret="another secret"))
    assert log_id_key(Settings(_env_file=None, log_id_key="fixed key 123")) == b"fixed key 123"


def test_secrets_are_redacted_from_exception_text_and_extra_fields():
    stream = capture(Settings(_env_file=None, telegram_bot_token=TOKEN))
    log = logging.getLogger("sealion.test")
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{TOKEN}/getFile failed")
    except RuntimeError:
        log.exception("download failed", extra={"url": f"https://x/bot{TOKEN}/y",
                                                "details": {"calls": [f"bot{TOKEN}"]}})
    text = stream.getvalue()
    assert TOKEN not in text
    [line] = [json.loads(line) for line in text.splitlines()]
    assert "RuntimeError" in line["exc_info"] and "bot***/getFile" in line["exc_info"]
    assert line["url"] == "https://x/bot***/y"
    assert line["details"] == {"calls": ["bot***"]}


@pytest.fixture(scope="module")
def api(tmp_path_factory, redis_server) -> Iterator[ApiProcess]:
    home = tmp_path_factory.mktemp("privacy")
    process = ApiProcess({
        "ENVIRONMENT": "test", "REDIS_URL": f"{redis_server.url[:-2]}/0", "DATA_DIR": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'log.db'}", "LOG_FORMAT": "json",
        "ADMIN_PASSWORD": "a long enough admin password",
        "WHATSAPP_ACCESS_TOKEN": "wa-token", "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922", "WHATSAPP_VERIFY_TOKEN": "verify-me-123",
    }, home / "api.log").start()
    yield process
    process.stop()


def test_the_access_log_keeps_no_query_strings(api):
    httpx.get(f"{api.base_url}/admin", params={"q": "my bank PIN", "user_id": WA_ID})
    httpx.get(f"{api.base_url}/admin/people/delete",
              params={"platform": "whatsapp", "user_id": WA_ID})
    httpx.get(f"{api.base_url}/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me-123", "hub.challenge": "42"})
    log = api.log()
    assert "/admin/people/delete" in log  # the access log is on ...
    assert WA_ID not in log and "bank" not in log and "verify-me-123" not in log  # ... bare


def test_a_phone_number_never_reaches_the_logs_through_a_webhook(api):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "106540352242922"},
            "contacts": [{"wa_id": WA_ID, "profile": {"name": "Siti"}}],
            "messages": [{"id": "wamid.privacy-1", "from": WA_ID, "timestamp": "1700000000",
                          "type": "text", "text": {"body": "hello"}}]}}]}]}).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    for _ in range(2):  # the second is a duplicate, and says so in the log
        response = httpx.post(f"{api.base_url}/webhooks/whatsapp", content=body,
                              headers={"X-Hub-Signature-256": signature})
        assert response.status_code == 200
    log = api.log()
    assert "duplicate" in log
    assert WA_ID not in log and "Siti" not in log
    # A real wamid is base64 holding the sender's number: message ids are hashed too.
    assert "wamid.privacy-1" not in log
