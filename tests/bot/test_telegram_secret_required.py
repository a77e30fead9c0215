"""Telegram's webhook secret is required whenever Telegram is on and the API listens beyond
this machine (issue 12, hole 11): the real `sealion-bot api` process refuses to start. On
127.0.0.1 it starts with a secret generated in DATA_DIR (issue 18: tests/security/
test_webhook_exposure.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.kernel.settings import Settings
from tests.helpers.api_process import ROOT, free_port

TOKEN = "7000001:AAtest-token-for-the-listen-test"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "REDIS_"))}
    return {**base, "PYTHONPATH": str(ROOT), "ENVIRONMENT": "development",
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9",
            "REDIS_URL": "redis://127.0.0.1:9/0", **extra}


@pytest.mark.e2e
@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_the_api_refuses_to_listen_publicly_without_the_secret(tmp_path, host):
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "api", "--host", host, "--port", str(free_port())],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "TELEGRAM_WEBHOOK_SECRET of 16+ characters is required" in (result.stderr
                                                                        + result.stdout)


def test_with_the_secret_it_listens_anywhere_and_checks_it():
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN,
                        telegram_webhook_secret="s" * 24)
    assert settings.check_listen_address("0.0.0.0") is None


@pytest.mark.parametrize("host,public", [("127.0.0.1", False), ("localhost", False),
                                         ("::1", False), ("127.0.0.2", False),
                                         ("0.0.0.0", True), ("::", True), ("10.0.0.5", True),
                                         ("bot.example.org", True)])
def test_what_counts_as_beyond_this_machine(host, public):
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN)
    if public:
        with pytest.raises(ValueError, match="16\\+ characters is required"):
            settings.check_listen_address(host)
    else:
        assert "not set" in (settings.check_listen_address(host) or "")


def test_a_short_secret_is_not_enough_beyond_loopback():
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, telegram_webhook_secret="short")
    with pytest.raises(ValueError, match="16\\+ characters"):
        settings.check_listen_address("0.0.0.0")
    assert "short" in (settings.check_listen_address("127.0.0.1") or "")


def test_without_telegram_nothing_is_required():
    assert Settings(_env_file=None).check_listen_address("0.0.0.0") is None
