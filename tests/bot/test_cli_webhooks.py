"""`sealion-bot set-webhook` and `webhook-info` against the platform stand-ins."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.kernel.settings import get_settings
from tests import conftest as c


@pytest.fixture()
def run(redis_server, telegram, line, whatsapp):
    env = c.service_env(redis_server.url, c.Path("unused"), telegram=telegram.base_url,
                        line=line.base_url, whatsapp=whatsapp.base_url)

    def invoke(*args: str, **overrides: str):
        get_settings.cache_clear()
        result = CliRunner().invoke(main, list(args), env={**env, **overrides})
        get_settings.cache_clear()
        return result

    return invoke


def test_telegram_set_webhook_and_info(run, telegram):
    url = "https://bot.example.org/webhooks/telegram"
    result = run("set-webhook", "telegram", "--url", url, "--drop-pending")
    assert result.exit_code == 0, result.output
    assert url in result.output
    [call] = telegram.calls_to("setWebhook")
    assert call.params["url"] == url
    assert call.params["secret_token"] == c.WEBHOOK_SECRET
    assert json.loads(call.params["allowed_updates"]) == ["message", "callback_query",
                                                          "message_reaction"]
    assert call.params["drop_pending_updates"] in ("true", "True", True)

    info = run("webhook-info", "telegram")
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["url"] == url
    assert c.TELEGRAM_TOKEN not in result.output + info.output


def test_line_and_whatsapp_check_credentials_and_print_the_url(run, line, whatsapp):
    for platform, stand_in, name in (("line", line, "bot_info"),
                                     ("whatsapp", whatsapp, "phone_number")):
        url = f"https://bot.example.org/webhooks/{platform}"
        result = run("set-webhook", platform, "--url", url)
        assert result.exit_code == 0, result.output
        assert url in result.output and "accepted" in result.output
        assert stand_in.calls_to(name)


def test_wrong_credentials_and_disabled_platforms_fail_clearly(run):
    bad = run("webhook-info", "whatsapp", WHATSAPP_ACCESS_TOKEN="wrong-token")
    assert bad.exit_code != 0 and "refused" in bad.output
    bad = run("webhook-info", "line", LINE_CHANNEL_ACCESS_TOKEN="wrong-token")
    assert bad.exit_code != 0 and "refused" in bad.output
    off = run("set-webhook", "line", "--url", "https://x/webhooks/line",
              LINE_CHANNEL_SECRET="")
    assert off.exit_code != 0 and "not configured" in off.output
