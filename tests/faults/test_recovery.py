"""Fault injection in production shape: separate `sealion-bot api` and `sealion-bot worker`
processes, a real redis-server with appendonly yes and appendfsync always, tiny Qwen3-VL, the
Telegram stand-in behind a proxy that can refuse connections.

Every case asserts that every message is answered exactly once within its target. Recovery is
made quick with short leases and reconciler intervals (the defaults are measured by
benchmarks/recovery.py); CELERY_VISIBILITY_TIMEOUT keeps its default of an hour, so nothing here
depends on Celery redelivering a dead worker's tasks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bot.embedded_redis import EmbeddedRedis, free_port
from bot.languages import SUPPORTED_LANGUAGES
from bot.texts import Text, text
from tests.conftest import WEBHOOK_SECRET, new_chat_id, service_env
from tests.faults.proxy import RefusingProxy
from tests.helpers.images import image_bytes
from tests.helpers.services import WorkerProcess
from tests.helpers.updates import photo_update, text_update
from tests.helpers.waiting import sent_to, wait_until
from workers.faults import STEPS

APOLOGIES = {text(Text.APOLOGY, language) for language in SUPPORTED_LANGUAGES}
#: Seconds within which every affected chat must be answered once a worker can run again.
TARGET = 60.0


class Stack:
    def __init__(self, root: Path, telegram, checkpoint: Path) -> None:
        from storage.log import upgrade_database

        self.root = root
        self.telegram = telegram
        self.redis = EmbeddedRedis(root / "redis", persist=True, fsync_always=True).start()
        self.proxy = RefusingProxy(int(telegram.base_url.rsplit(":", 1)[1])).allow()
        database_url = f"sqlite:///{root}/log.db"
        upgrade_database(database_url)
        self.env = service_env(
            self.redis.url, checkpoint, telegram=self.proxy.base_url, line="http://127.0.0.1:9",
            whatsapp="http://127.0.0.1:9", DATABASE_URL=database_url, DATA_DIR=str(root / "data"),
            # Production values: recovery must not rest on Celery's redelivery.
            TURN_TIMEOUT_SECONDS="600", CELERY_TASK_TIME_LIMIT="900",
            CELERY_VISIBILITY_TIMEOUT="3600", CELERY_RESTORE_INTERVAL="10",
            LEASE_SECONDS="4", LEASE_HEARTBEAT_SECONDS="1", RECONCILE_INTERVAL_SECONDS="1",
            RECONCILE_GRACE_SECONDS="2", REPLY_LANGUAGE_CHECK="false", MAX_NEW_TOKENS="64",
            ASR_BACKEND="off",
            # A step raises in the turns whose text names it (#fault-send, ...), nowhere else.
            FAULT_INJECT="marked")
        self.api_port = free_port()
        self.api_log = open(root / "api.log", "ab")
        self.api = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "api", "--host", "127.0.0.1",
             "--port", str(self.api_port)],
            env=self.env, stdout=self.api_log, stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=10)
        wait_until(self._api_up, 60, "the API")
        self.worker: WorkerProcess | None = None
        self._workers = 0

    def _api_up(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, **extra: str) -> WorkerProcess:
        self._workers += 1
        log = self.root / f"worker-{self._workers}.log"
        self.worker = WorkerProcess({**self.env, **extra}, log).start(self.redis.url)
        # The log line itself (the startup summary mentions 'model ready' before it is).
        wait_until(lambda: '"message": "model ready"' in log.read_text(errors="replace"), 120,
                   "the model")
        return self.worker

    def post(self, update: dict) -> int:
        response = self.http.post("/webhooks/telegram", json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
        return response.status_code

    def answers(self, chat: int) -> list[str]:
        return [c.params.get("text", "") for c in sent_to(self.telegram, chat)]

    def expect_answers(self, expected: dict[int, int], within: float) -> None:
        """Each chat gets exactly its number of messages: all within `within` seconds, and no
        more for a few seconds after."""
        wait_until(lambda: all(len(self.answers(c)) >= n for c, n in expected.items()), within,
                   f"answers to {len(expected)} chat(s)")
        time.sleep(3.0)
        got = {c: len(self.answers(c)) for c in expected}
        assert got == expected, {c: self.answers(c) for c in expected}

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.api.terminate()
        try:
            self.api.wait(20)
        except subprocess.TimeoutExpired:
            self.api.kill()
        self.http.close()
        self.api_log.close()
        self.proxy.refuse()
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, telegram_api) -> Iterator[Stack]:
    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    root = tmp_path_factory.mktemp("faults")
    # Forced to write every token it is allowed (MAX_NEW_TOKENS): a generation takes a while.
    checkpoint = build_tiny_qwen3_vl(root / "model", generation={"min_new_tokens": 4000})
    telegram_api.reset()
    built = Stack(root, telegram_api, checkpoint)
    built.start_worker()
    yield built
    built.close()
    assert telegram_api.spec_errors == [], telegram_api.spec_errors


def test_an_exception_in_each_step_ends_in_one_answer_or_apology(stack):
    stack.telegram.add_file("photo-large", image_bytes(320, 240, fmt="JPEG"),
                            file_path="photos/red.jpg")
    chats = {step: new_chat_id() for step in STEPS}
    for step, chat in chats.items():
        body = f"#fault-{step} What is in this picture?"
        update = (photo_update(chat, caption=body) if step == "fetch"
                  else text_update(chat, body))
        assert stack.post(update) == 200
    # The download failing leaves a notice and the answer still comes; the log write failing
    # after the answer went out adds nothing; every other failure ends in the apology.
    stack.expect_answers({chat: 2 if step == "fetch" else 1 for step, chat in chats.items()},
                         TARGET)
    for step, chat in chats.items():
        answers = stack.answers(chat)
        if step == "fetch":
            assert answers[0] in APOLOGIES and answers[1] not in APOLOGIES, answers
        elif step == "record":
            assert answers[0] not in APOLOGIES, answers
        else:
            assert answers[0] in APOLOGIES, (step, answers)


def test_a_worker_killed_mid_generation_is_answered_after_a_restart(stack):
    worker = stack.worker
    assert worker is not None
    chats = [new_chat_id() for _ in range(3)]
    for n, chat in enumerate(chats):
        assert stack.post(text_update(chat, f"Write a long story number {n}.")) == 200
    client = redis.Redis.from_url(stack.redis.url)
    wait_until(lambda: any(client.scan_iter(match="sealion:lease:*:generating")), 60,
               "a generation to begin")
    worker.kill()
    stack.start_worker()
    ready = time.monotonic()
    stack.expect_answers({c: 1 for c in chats}, TARGET)
    assert time.monotonic() - ready < TARGET + 5
    client.close()


def test_redis_killed_and_restarted_loses_nothing_and_workers_survive(stack):
    worker = stack.worker
    assert worker is not None and worker.process is not None
    pid = worker.process.pid
    before = [new_chat_id() for _ in range(3)]
    updates = {chat: text_update(chat, "Apa khabar? Boleh bantu saya?") for chat in before}
    for chat in before:
        assert stack.post(updates[chat]) == 200
    stack.redis.kill()  # mid-turn: these are being answered
    during = [new_chat_id() for _ in range(2)]
    for chat in during:
        updates[chat] = text_update(chat, "Hello? Are you there?")
        assert stack.post(updates[chat]) == 503  # refused: the platform sends it again
    time.sleep(3.0)
    stack.redis.start()  # on its append-only file
    restarted = time.monotonic()
    for chat in during + before[:1]:  # the redeliveries (one of an accepted event)
        assert stack.post(updates[chat]) == 200
    stack.expect_answers({c: 1 for c in before + during}, TARGET)
    assert time.monotonic() - restarted < TARGET + 5
    assert worker.process.poll() is None and worker.process.pid == pid, worker.tail()
    assert "Unrecoverable error" not in worker.tail(400)
    assert stack.api.poll() is None


def test_a_platform_refusing_connections_for_a_while(stack):
    stack.proxy.refuse()
    chats = [new_chat_id() for _ in range(2)]
    try:
        for chat in chats:
            assert stack.post(text_update(chat, "Good morning!")) == 200
        time.sleep(6.0)  # sending fails: connection refused, retried with backoff
        assert all(stack.answers(c) == [] for c in chats)
    finally:
        stack.proxy.allow()
    stack.expect_answers({c: 1 for c in chats}, TARGET)
