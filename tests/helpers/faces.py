"""The web faces as tests/security attacks them: the real app's settings on a database of the
suite's Redis, and webhook requests signed as each platform signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bot.kernel.settings import Settings
from tests import conftest as c

#: The database of the suite's Redis these tests use (emptied before and after each test).
DATABASE = 11


@contextmanager
def fresh_database(redis_server: Any) -> Iterator[str]:
    """The URL of an empty database of the suite's Redis, emptied again afterwards."""
    url = f"{redis_server.url[:-2]}/{DATABASE}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def settings_for(redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Every platform on (with the suite's credentials), nothing from the environment."""
    values: dict[str, Any] = {
        "_env_file": None, "environment": "test", "redis_url": redis_url,
        "data_dir": str(data_dir), "database_url": f"sqlite:///{data_dir / 'log.db'}",
        "log_id_key": c.LOG_ID_KEY,
        "telegram_bot_token": c.TELEGRAM_TOKEN, "telegram_webhook_secret": c.WEBHOOK_SECRET,
        "telegram_api_base_url": "http://127.0.0.1:9",
        "line_channel_secret": c.LINE_SECRET, "line_channel_access_token": c.LINE_TOKEN,
        "line_api_base_url": "http://127.0.0.1:9", "line_data_api_base_url": "http://127.0.0.1:9",
        "whatsapp_access_token": c.WHATSAPP_TOKEN, "whatsapp_app_secret": c.WHATSAPP_APP_SECRET,
        "whatsapp_verify_token": c.WHATSAPP_VERIFY_TOKEN,
        "whatsapp_phone_number_id": c.WHATSAPP_PHONE_ID,
        "whatsapp_api_base_url": "http://127.0.0.1:9/v23.0",
    }
    values.update(overrides)
    return Settings(**values)


def telegram_request(update: dict, secret: str | None = c.WEBHOOK_SECRET
                     ) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return json.dumps(update).encode(), headers


def line_request(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    digest = hmac.new(c.LINE_SECRET.encode(), raw, hashlib.sha256).digest()
    return raw, {"Content-Type": "application/json",
                 "X-Line-Signature": base64.b64encode(digest).decode()}


def whatsapp_request(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    digest = hmac.new(c.WHATSAPP_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
