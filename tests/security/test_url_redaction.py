"""Item 13: credentials inside OPENAI_BASE_URL, GUARD_BASE_URL, ASR_BASE_URL, REDIS_URL or
DATABASE_URL are never printed whole: not in the startup summary, not in the logs (whoever
formats the URL, an engine's error message included), not in /readyz.

A real `sealion-bot worker` runs with every server URL carrying a password and nothing
listening behind them: its log and the API's /readyz must name the servers without the
credentials. Before the fix the summary, the model-failure paragraph (logged and served by
/readyz) and the guard's "not answering" warning printed them whole.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bot.cli.embedded_redis import free_port
from bot.cli.startup import summary
from bot.kernel.logs import RedactSecrets
from bot.kernel.settings import Settings
from bot.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
#: Credentials as an operator may write them into the URL settings (not SecretStr fields).
MODEL_PASSWORD = "model-pw-7Qx2"
GUARD_PASSWORD = "guard-pw-9Rk4"
ASR_TOKEN = "asr-token-3Lm8"
QUERY_KEY = "query-key-5Tz1"
REDIS_PASSWORD = "redis-pw-2Hd6"
DATABASE_PASSWORD = "db-pw-8Wc3"
ALL = (MODEL_PASSWORD, GUARD_PASSWORD, ASR_TOKEN, QUERY_KEY, REDIS_PASSWORD,
       DATABASE_PASSWORD)


def _urls(port: int) -> dict[str, str]:
    return {
        "openai_base_url": f"http://sealion:{MODEL_PASSWORD}@127.0.0.1:{port}/v1",
        "guard_base_url": f"http://guard:{GUARD_PASSWORD}@127.0.0.1:{port}/v1"
                          f"?api_key={QUERY_KEY}",
        "asr_base_url": f"http://{ASR_TOKEN}@127.0.0.1:{port}/v1",
    }


def test_the_startup_summary_hides_every_credential():
    settings = Settings(_env_file=None, model_backend="openai", guard_backend="openai",
                        **_urls(9),
                        redis_url=f"redis://default:{REDIS_PASSWORD}@redis.internal:6379/0",
                        database_url=f"postgresql://bot:{DATABASE_PASSWORD}@db:5432/log")
    for role in ("dev", "api", "worker"):
        text = summary(settings, role, host="127.0.0.1", port=8080)
        assert "127.0.0.1:9/v1" in text, text  # the server is still named
        for secret in ALL:
            assert secret not in text, (role, secret, text)


@pytest.mark.parametrize("url,shown", [
    ("https://user:p%40ss@h.example/v1", "https://user:***@h.example/v1"),
    ("https://sk-abcdef@h.example/v1", "https://***@h.example/v1"),
    ("https://h.example/v1?api-key=abc&model=x", "https://h.example/v1?api-key=***&model=x"),
    ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("sqlite:///.sealion/log.db", "sqlite:///.sealion/log.db"),
    ("https://api.sea-lion.ai/v1", "https://api.sea-lion.ai/v1"),
])
def test_redact_url(url, shown):
    from bot.kernel.logs import redact_url

    assert redact_url(url) == shown


def test_urls_inside_any_text_are_redacted_in_linear_time():
    from bot.kernel.logs import redact_urls_in

    assert redact_urls_in("server at http://u:secretpw@h:1/v1 timed out (x)") \
        == "server at http://u:***@h:1/v1 timed out (x)"
    assert redact_urls_in("('https://tok123@h/v1')") == "('https://***@h/v1')"
    # Shapes that would make a backtracking pattern slow cost one pass each.
    for hostile in ("a" * 200_000 + "://" * 100_000, ("x://" + "@:" * 50) * 2_000,
                    "://" * 200_000):
        started = time.perf_counter()
        redact_urls_in(hostile)
        assert time.perf_counter() - started < 1.0


def test_a_log_line_quoting_a_configured_url_loses_its_credentials():
    """Whoever formats the URL (an HTTP client's message, another spelling of it), the log
    handler's filter hides the credentials of every configured URL."""
    settings = Settings(_env_file=None, guard_backend="openai", **_urls(9))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(settings))
    logger = logging.getLogger("tests.security.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("guard server at %s not answering yet", settings.guard_base_url)
        # The password alone, outside a URL (a library quoting the userinfo).
        logger.warning("auth failed for user guard with password %s", GUARD_PASSWORD)
        try:
            raise ConnectionError(f"cannot reach {settings.openai_base_url}/chat/completions")
        except ConnectionError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "guard server at http://guard:***@127.0.0.1:9/v1" in text, text
    for secret in ALL:
        assert secret not in text, (secret, text)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "OPENAI_", "GUARD_",
                                "ASR_", "ADMIN_", "REDIS_", "DATABASE_", "WEB_CHAT", "LOG_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT), DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def _settled(body: dict) -> bool:
    """/readyz has the reason, and every host of the worker has tried to load."""
    hosts = [h for worker in (body.get("models") or {}).values() for h in worker.values()]
    return bool(body.get("reason")) and len(hosts) == 3 and all(
        h["state"] != "loading" for h in hosts)


@pytest.mark.e2e
def test_a_worker_with_credentials_in_its_server_urls_never_prints_them(redis_server,
                                                                        tmp_path):
    """The real worker and the real /readyz: the model server, the guard server and the
    speech server are all down, and every one of their URLs carries a credential."""
    redis_url = f"{redis_server.url[:-2]}/11"
    redis.Redis.from_url(redis_url).flushdb()
    urls = _urls(free_port())
    env = _env(tmp_path, REDIS_URL=redis_url, MODEL_BACKEND="openai",
               OPENAI_BASE_URL=urls["openai_base_url"], OPENAI_MODEL="sea-lion",
               OPENAI_TIMEOUT_SECONDS="3", GUARD_BACKEND="openai",
               GUARD_BASE_URL=urls["guard_base_url"], GUARD_MODEL="guard",
               GUARD_TIMEOUT_SECONDS="3", ASR_BACKEND="openai",
               ASR_BASE_URL=urls["asr_base_url"], LOG_FORMAT="text", LOG_LEVEL="INFO",
               DATABASE_URL=f"sqlite:///{tmp_path / 'log.db'}")
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--concurrency", "2"], cwd=tmp_path,
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api_settings = Settings(_env_file=None, redis_url=redis_url, model_backend="openai",
                            openai_base_url=urls["openai_base_url"])
    try:
        with TestClient(create_app(api_settings)) as client:
            deadline = time.monotonic() + 120
            ready = client.get("/readyz")
            while time.monotonic() < deadline and not _settled(ready.json()):
                time.sleep(0.5)
                ready = client.get("/readyz")
        output = log_path.read_text(errors="replace")
        reason = ready.json().get("reason", "")
        assert ready.status_code == 503 and reason, output[-3000:]
        assert "the OpenAI-compatible server at http://sealion:***@127.0.0.1" in reason, reason
        # Every host's health is shown, its server named without the credential.
        body = ready.text
        [hosts] = ready.json()["models"].values()
        assert {kind: h["state"] for kind, h in hosts.items()} == {
            "chat": "unavailable", "guard": "unavailable", "speech": "unavailable"}, body
        assert "guard server at http://guard:***@127.0.0.1" in hosts["guard"]["reason"], body
        assert hosts["speech"]["details"]["base_url"].startswith("http://***@127.0.0.1")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        redis.Redis.from_url(redis_url).flushdb()
    output = log_path.read_text(errors="replace")
    assert "sealion-bot worker" in output and "The model could not be reached" in output
    assert "guard server at http://guard:***@127.0.0.1" in output, output[-3000:]
    for secret in ALL:
        assert secret not in output, (secret, output[-3000:])
        assert secret not in reason, (secret, reason)
        assert secret not in body, (secret, body)
