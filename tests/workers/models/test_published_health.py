"""A real `sealion-bot worker` publishes the health of each of its model hosts, and the API's
/readyz shows them per worker and per host.

The worker hosts three models: the chat model on an OpenAI-compatible server (the loopback chat
stand-in), the guard on a server that is not running yet (the guard stand-in, started later on
the same port), and Whisper in process from a folder that does not exist. So /readyz must show
the chat model ready, the guard unavailable and then ready once its server answers, and the
speech model failed with its reason; it stays 200 while the chat model can answer, turns 503
with the paragraph when the chat server goes away, and 200 again when it comes back. An idle
worker whose hosts do not change publishes nothing (the board's entry keeps its time).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bot.cli.embedded_redis import free_port
from bot.kernel.settings import Settings
from bot.web.app import create_app
from storage.keys import KeyBuilder
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.guard_api import GuardStandIn
from tests.helpers.services import WorkerProcess
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "OPENAI_", "GUARD_",
                                "ASR_", "ADMIN_", "REDIS_", "DATABASE_", "WEB_CHAT", "LOG_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT), DATA_DIR=str(tmp_path / "data"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'log.db'}", **extra)
    return env


def wait_for(client: TestClient, done: Callable[[dict], bool], timeout: float = 60) -> dict:
    """The first /readyz answer (its body, with its status) for which `done(body)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/readyz")
        body = {**answer.json(), "http": answer.status_code}
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def hosts_of(body: dict) -> dict[str, dict]:
    [hosts] = (body.get("models") or {"": {}}).values()
    return hosts


def states(body: dict) -> dict[str, str]:
    return {kind: host["state"] for kind, host in hosts_of(body).items()}


@pytest.fixture()
def redis_url(redis_server):
    url = f"{redis_server.url[:-2]}/14"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.mark.e2e
def test_readyz_shows_each_hosts_health_from_a_real_worker(redis_url, tmp_path):
    chat = ChatStandIn(model="sealion").start()
    chat_port = int(chat.base_url.rsplit(":", 1)[1])
    guard = GuardStandIn(model="sea-guard")
    guard_port = free_port()
    missing = tmp_path / "no-whisper-here"
    env = _env(tmp_path, REDIS_URL=redis_url, MODEL_BACKEND="openai", OPENAI_BASE_URL=chat.v1,
               OPENAI_MODEL="sealion", OPENAI_TIMEOUT_SECONDS="3", GUARD_BACKEND="openai",
               GUARD_BASE_URL=f"http://127.0.0.1:{guard_port}/v1", GUARD_MODEL="sea-guard",
               GUARD_TIMEOUT_SECONDS="3", ASR_BACKEND="transformers", ASR_MODEL_ID=str(missing),
               MODEL_RETRY_SECONDS="1", LEASE_HEARTBEAT_SECONDS="1")
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2)
    app = create_app(Settings(_env_file=None, redis_url=redis_url))
    try:
        worker.start(redis_url)
        with TestClient(app) as client:
            # Every host has tried to load.
            body = wait_for(client, lambda b: len(states(b)) == 3
                            and "loading" not in states(b).values())
            assert body["http"] == 200 and body["status"] == "ready", (body, worker.tail())
            assert states(body) == {"chat": "ready", "guard": "unavailable",
                                    "speech": "failed"}, body
            hosts = hosts_of(body)
            assert body["model"] == ["ready"] and "reason" not in body
            assert hosts["chat"]["details"]["backend"] == "openai"
            assert hosts["chat"]["details"]["model"] == "sealion"
            assert f"guard server at http://127.0.0.1:{guard_port}/v1" in hosts["guard"]["reason"]
            assert "GUARD_FAIL=closed" in hosts["guard"]["reason"]
            assert f"ASR_MODEL_ID={missing}" in hosts["speech"]["reason"]
            assert "voice notes get a short apology" in hosts["speech"]["reason"]

            # Idle and unchanged: nothing is published (one HSET per change, none per beat).
            board = redis.Redis.from_url(redis_url)
            [name] = board.hkeys(KeyBuilder().model_status())
            at = json.loads(board.hget(KeyBuilder().model_status(), name))["at"]
            # Four heartbeats later (each publishes what changed; the guard server is asked
            # again every second meanwhile), nothing was published.
            beats = KeyBuilder().workers()
            [beating] = board.zrange(beats, 0, -1)
            first = board.zscore(beats, beating)
            wait_until(lambda: board.zscore(beats, beating) >= first + 3.5, 15, "heartbeats")
            assert json.loads(board.hget(KeyBuilder().model_status(), name))["at"] == at

            guard.start(guard_port)  # the guard server comes up: asked again, it answers
            body = wait_for(client, lambda b: states(b).get("guard") == "ready")
            assert states(body) == {"chat": "ready", "guard": "ready", "speech": "failed"}
            assert hosts_of(body)["guard"]["reason"] == ""

            chat.stop()  # the chat server goes away: no worker's chat model can answer
            body = wait_for(client, lambda b: b["http"] == 503)
            assert body["http"] == 503 and body["model"] == ["unavailable"], body
            assert f"the OpenAI-compatible server at {chat.v1}" in body["reason"]
            assert body["reason"] == hosts_of(body)["chat"]["reason"]

            chat.start(chat_port)  # and comes back
            body = wait_for(client, lambda b: b["http"] == 200)
            assert body["http"] == 200 and states(body)["chat"] == "ready", body
    finally:
        worker.stop()
        chat.stop()
        guard.stop()
    assert chat.spec_errors == [] and guard.spec_errors == []
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]
