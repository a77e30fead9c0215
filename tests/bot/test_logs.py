"""Logs: JSON lines, and secrets never written whatever logs them."""

from __future__ import annotations

import io
import json
import logging

from bot.kernel.logs import configure_logging
from bot.kernel.settings import Settings


def capture(settings: Settings, text: bool | None = None):
    configure_logging(settings, text=text)
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    return stream


def test_json_lines_with_extra_ids_and_tokens_redacted():
    token = "7000001:AAsecret-telegram-token"
    settings = Settings(telegram_bot_token=token, whatsapp_app_secret="app-secret-123",
                        redis_url="redis://127.0.0.1:1/0")
    stream = capture(settings)
    log = logging.getLogger("sealion.test")
    log.info("calling https://api.telegram.org/bot%s/sendMessage", token,
             extra={"conversation": "telegram:1:2:2", "turn": "t1"})
    log.warning("app secret is app-secret-123")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "calling https://api.telegram.org/bot***/sendMessage"
    assert lines[0]["conversation"] == "telegram:1:2:2" and lines[0]["level"] == "INFO"
    assert "app-secret-123" not in stream.getvalue()
    # httpx logs request URLs at INFO: kept quiet
    logging.getLogger("httpx").info("HTTP Request: POST https://x/bot%s/getMe", token)
    assert "getMe" not in stream.getvalue()


def test_text_format():
    stream = capture(Settings(redis_url="redis://127.0.0.1:1/0"), text=True)
    logging.getLogger("sealion.test").info("hello %d", 5)
    assert stream.getvalue().rstrip().endswith("INFO sealion.test: hello 5")
