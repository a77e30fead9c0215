"""The startup summary and the paragraph for a model that cannot load: `sealion-bot dev` run for
real with nothing configured (offline, so the default model cannot be fetched), and the
explanations of real load failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.cli.embedded_redis import free_port
from bot.cli.startup import summary
from bot.kernel.settings import Settings
from workers.models.failure import explain_model_failure

ROOT = Path(__file__).resolve().parents[2]


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no platform, no Redis, no model settings, offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "OPENAI_",
                                "ADMIN_", "REDIS_", "DATABASE_", "WEB_CHAT", "LOG_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT), **extra)
    return env


def test_summary_with_nothing_configured_says_what_turns_things_on():
    settings = Settings(_env_file=None, redis_url=None, telegram_bot_token=None,
                        line_channel_secret=None, line_channel_access_token=None,
                        whatsapp_access_token=None, admin_password=None,
                        database_url="postgresql+psycopg://bot:s3cret-pw@db:5432/log")
    text = summary(settings, "dev", host="127.0.0.1", port=8080, web_chat=True)
    assert "telegram   off — set TELEGRAM_BOT_TOKEN" in text
    assert "TELEGRAM_POLLING=true" in text
    assert "line       off — set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN" in text
    assert "WHATSAPP_PHONE_NUMBER_ID" in text
    assert "http://127.0.0.1:8080/chat" in text
    assert "sealion-bot chat" in text
    assert "transformers, aisingapore/Qwen-SEA-LION-v4-4B-VL — loading" in text
    assert "admin      off — set ADMIN_PASSWORD" in text
    assert "s3cret-pw" not in text and "postgresql+psycopg://bot:***@db:5432/log" in text


def test_summary_of_a_configured_api():
    settings = Settings(_env_file=None, telegram_bot_token="123:abc", telegram_polling=True,
                        admin_password="a-long-enough-password", model_backend="openai",
                        openai_base_url="https://api.sea-lion.ai/v1",
                        openai_model="aisingapore/Gemma-SEA-LION-v3-9B-IT")
    text = summary(settings, "api", host="0.0.0.0", port=9000)
    assert "telegram   on, polling: run `sealion-bot poll`" in text
    assert "web chat   off — set WEB_CHAT=true" in text
    assert "openai-compatible server https://api.sea-lion.ai/v1" in text
    assert "aisingapore/Gemma-SEA-LION-v3-9B-IT" in text
    assert "http://127.0.0.1:9000/admin" in text
    short = settings.model_copy(update={"admin_password": SecretStr("kopi")})
    assert "admin      off — ADMIN_PASSWORD needs at least 12 characters" in summary(short, "api")


def test_a_missing_folder_is_explained(tmp_path):
    pytest.importorskip("transformers")
    from workers.models.chat.base import EngineError
    from workers.models.chat.transformers import TransformersEngine

    folder = tmp_path / "no-such-checkpoint"
    settings = Settings(_env_file=None, model_id=str(folder))
    with pytest.raises(EngineError, match="no checkpoint folder") as caught:
        TransformersEngine(str(folder), None, device="cpu").load()
    text = explain_model_failure(settings, caught.value)
    assert f"MODEL_ID={folder}" in text
    assert f"There is no folder {folder}" in text
    assert "MODEL_BACKEND=openai" in text and "https://api.sea-lion.ai/v1" in text
    assert "\n" not in text  # one paragraph


@pytest.mark.integration  # a real connection, refused by a closed loopback port
def test_an_unreachable_model_server_is_explained():
    pytest.importorskip("openai")
    from workers.models.chat.openai import OpenAIEngine

    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(_env_file=None, model_backend="openai", openai_base_url=url)
    with pytest.raises(Exception) as caught:
        OpenAIEngine(url, "sea-lion", None, timeout=3).load()
    text = explain_model_failure(settings, caught.value)
    assert f"the OpenAI-compatible server at {url}" in text
    assert "GET /v1/models" in text


@pytest.mark.e2e
def test_dev_with_nothing_configured_prints_the_summary_and_why_there_is_no_model(tmp_path):
    port = free_port()
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "dev", "--port", str(port), "--concurrency", "2"],
            cwd=tmp_path, env=bare_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        ready = None
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and dev.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if ready.status_code == 503 and ready.json().get("reason"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        output = log_path.read_text(errors="replace")
        assert ready is not None and ready.status_code == 503, output[-3000:]
        body = ready.json()
        assert body["model"] == ["failed"]
        assert "MODEL_ID=aisingapore/Qwen-SEA-LION-v4-4B-VL" in body["reason"]
        assert "offline" in body["reason"]
        assert httpx.get(f"http://127.0.0.1:{port}/chat", timeout=5).status_code == 200
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGINT)
            try:
                dev.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                dev.wait(10)
    output = log_path.read_text(errors="replace")
    assert "sealion-bot dev" in output
    assert "telegram   off — set TELEGRAM_BOT_TOKEN" in output
    assert f"web chat   http://127.0.0.1:{port}/chat" in output
    assert "admin      off — set ADMIN_PASSWORD" in output
    assert "The model could not be loaded" in output
    assert "point MODEL_ID at a local checkpoint folder" in output
    assert "Traceback" not in output, output[-3000:]


def test_a_broken_model_stack_is_explained():
    settings = Settings(_env_file=None, model_id="aisingapore/Qwen-SEA-LION-v4-4B-VL")
    try:
        try:
            from transformers import NoSuchModelClass  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("cannot load aisingapore/Qwen-SEA-LION-v4-4B-VL") from exc
    except RuntimeError as exc:
        text = explain_model_failure(settings, exc)
    assert "reinstall the model stack with `pip install -e '.[gpu]'`" in text
    assert "MODEL_ID=aisingapore/Qwen-SEA-LION-v4-4B-VL" in text


@pytest.mark.e2e
def test_a_worker_whose_model_server_is_down_makes_readyz_say_why(redis_server, tmp_path):
    """A real `sealion-bot worker` with MODEL_BACKEND=openai and nothing listening: it records
    the failure in Redis, /readyz answers 503 with the paragraph, and no traceback is logged."""
    import redis
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    redis_url = f"{redis_server.url[:-2]}/13"  # the unit tests' range, flushed here
    redis.Redis.from_url(redis_url).flushdb()
    server = f"http://127.0.0.1:{free_port()}/v1"
    env = bare_env(tmp_path, REDIS_URL=redis_url, MODEL_BACKEND="openai",
                   OPENAI_BASE_URL=server, OPENAI_MODEL="aisingapore/Gemma-SEA-LION-v3-9B-IT",
                   OPENAI_TIMEOUT_SECONDS="3", ASR_BACKEND="off", LOG_FORMAT="text")
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--concurrency", "2"], cwd=tmp_path,
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    app = create_app(Settings(_env_file=None, redis_url=redis_url, model_backend="openai",
                              openai_base_url=server))
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ready = client.get("/readyz")
                if ready.json().get("reason"):
                    break
                time.sleep(0.5)
        output = log_path.read_text(errors="replace")
        assert ready.status_code == 503, output[-3000:]
        assert ready.json()["model"] == ["unavailable"]  # a server may come back
        assert f"the OpenAI-compatible server at {server}" in ready.json()["reason"]
        [hosts] = ready.json()["models"].values()
        assert hosts["chat"]["state"] == "unavailable"
        assert hosts["chat"]["reason"] == ready.json()["reason"]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        redis.Redis.from_url(redis_url).flushdb()
    output = log_path.read_text(errors="replace")
    assert "sealion-bot worker" in output and "openai-compatible server" in output
    assert "The model could not be reached" in output
    assert "Traceback" not in output
