"""Item 4: webhooks only where they are configured.

- While Telegram polls (TELEGRAM_POLLING, the README's "try it" setup, no secret), POST
  /webhooks/telegram answers 404: no local process or page can forge updates that choose their
  own chat and sender. Before the fix it accepted them (200).
- A served Telegram webhook always has a secret: the real `sealion-bot api` without
  TELEGRAM_WEBHOOK_SECRET generates one in DATA_DIR (mode 0600), checks it, and `sealion-bot
  set-webhook telegram` registers that same secret. Before, unsigned updates were accepted.
- A webhook request a browser sent for another site's page (`Origin`, `Sec-Fetch-Site`) is
  refused on all three platforms, even when it carries a valid signature. Before, 200.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator

import httpx
import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bot.cli.main import main
from bot.kernel.settings import get_settings
from bot.web.app import create_app
from tests import conftest as c
from tests.helpers.api_process import ApiProcess
from tests.helpers.faces import (
    fresh_database,
    line_request,
    settings_for,
    telegram_request,
    whatsapp_request,
)
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import text_update

SECRET_FILE = "telegram-webhook-secret"


@pytest.fixture()
def redis_url(redis_server) -> Iterator[str]:
    with fresh_database(redis_server) as url:
        yield url


def _accepted(redis_url: str) -> int:
    """How many events the accept path recorded (their dedupe keys)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match="sealion:dedupe:*"))
    finally:
        client.close()


def _signed(platform: str) -> tuple[bytes, dict[str, str]]:
    """A fresh, validly signed webhook request of `platform` carrying one text message."""
    if platform == "telegram":
        return telegram_request(text_update(c.new_chat_id(), "Halo"))
    if platform == "line":
        return line_request(line_event("text", f"U{c.new_chat_id():032d}"))
    return whatsapp_request(whatsapp_message("text", f"6281{c.new_chat_id():08d}"))


def _local_client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8080", client=("127.0.0.1", 41000))


def test_the_telegram_webhook_is_not_served_while_polling(redis_url, tmp_path):
    # The "try it" setup: polling, and no webhook secret at all.
    polling = settings_for(redis_url, tmp_path, telegram_polling=True,
                           telegram_webhook_secret=None)
    client = _local_client(create_app(polling))
    body, headers = telegram_request(text_update(c.new_chat_id(), "forged"), secret=None)
    answer = client.post("/webhooks/telegram", content=body, headers=headers)
    assert answer.status_code == 404, answer.text
    body, headers = _signed("telegram")  # even a signed one: polling gets the updates
    assert client.post("/webhooks/telegram", content=body, headers=headers).status_code == 404
    assert _accepted(redis_url) == 0
    # The other platforms' webhooks are still served, and polling needs no secret anywhere.
    body, headers = _signed("line")
    assert client.post("/webhooks/line", content=body, headers=headers).status_code == 200
    assert _accepted(redis_url) == 1
    assert polling.check_listen_address("0.0.0.0") is None
    # Polling off: the webhook is served (and the same update is accepted).
    served = _local_client(create_app(settings_for(redis_url, tmp_path)))
    body, headers = _signed("telegram")
    assert served.post("/webhooks/telegram", content=body, headers=headers).status_code == 200
    assert _accepted(redis_url) == 2


@pytest.mark.e2e
def test_the_api_generates_a_webhook_secret_that_set_webhook_registers(redis_url, telegram,
                                                                       tmp_path):
    data_dir = tmp_path / "data"
    env = {"ENVIRONMENT": "development", "REDIS_URL": redis_url, "DATA_DIR": str(data_dir),
           "TELEGRAM_BOT_TOKEN": c.TELEGRAM_TOKEN, "TELEGRAM_API_BASE_URL": telegram.base_url,
           "LOG_ID_KEY": c.LOG_ID_KEY}
    api = ApiProcess(env, tmp_path / "api.log").start()
    try:
        secret_file = data_dir / SECRET_FILE
        assert secret_file.is_file(), api.log()
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text().strip()
        assert len(secret) >= 32
        url = f"{api.base_url}/webhooks/telegram"
        unsigned = httpx.post(url, json=text_update(c.new_chat_id(), "forged"))
        assert unsigned.status_code == 401, unsigned.text
        wrong = httpx.post(url, json=text_update(c.new_chat_id(), "forged"),
                           headers={"X-Telegram-Bot-Api-Secret-Token": "x" * 32})
        assert wrong.status_code == 403
        assert _accepted(redis_url) == 0
        signed = httpx.post(url, json=text_update(c.new_chat_id(), "Halo"),
                            headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        assert signed.status_code == 200
        assert _accepted(redis_url) == 1
    finally:
        api.stop()
    log = api.log()
    assert "TELEGRAM_WEBHOOK_SECRET is not set" not in log
    assert secret not in log

    # `set-webhook` from the same installation registers the secret the API checks.
    env = c.service_env(redis_url, c.Path("unused"), telegram=telegram.base_url,
                        line="http://127.0.0.1:9", whatsapp="http://127.0.0.1:9",
                        DATA_DIR=str(data_dir), TELEGRAM_WEBHOOK_SECRET="")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["set-webhook", "telegram", "--url",
                                           "https://bot.example.org/webhooks/telegram"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    [call] = telegram.calls_to("setWebhook")
    assert call.params["secret_token"] == secret
    assert secret not in result.output


CROSS_SITE = [{"Origin": "https://evil.example"}, {"Origin": "null"},
              {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
              {"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"}]


@pytest.mark.parametrize("platform", ["telegram", "line", "whatsapp"])
@pytest.mark.parametrize("browser", CROSS_SITE, ids=lambda h: ",".join(f"{k}={v}"
                                                                        for k, v in h.items()))
def test_a_browser_request_for_another_site_is_refused(redis_url, tmp_path, platform, browser):
    client = _local_client(create_app(settings_for(redis_url, tmp_path)))
    body, headers = _signed(platform)
    refused = client.post(f"/webhooks/{platform}", content=body, headers={**headers, **browser})
    assert refused.status_code == 403, refused.text
    assert _accepted(redis_url) == 0
    # The same signed request as a platform sends it (neither header): accepted.
    accepted = client.post(f"/webhooks/{platform}", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert _accepted(redis_url) == 1


def test_the_subscription_handshake_refuses_browsers_too(redis_url, tmp_path):
    client = _local_client(create_app(settings_for(redis_url, tmp_path)))
    params = {"hub.mode": "subscribe", "hub.verify_token": c.WHATSAPP_VERIFY_TOKEN,
              "hub.challenge": "1158201444"}
    assert client.get("/webhooks/whatsapp", params=params,
                      headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    answer = client.get("/webhooks/whatsapp", params=params)
    assert answer.status_code == 200 and answer.text == "1158201444"
