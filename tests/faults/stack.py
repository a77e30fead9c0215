"""The service in production shape for the fault tests and benchmarks/recovery.py: a real
redis-server with appendonly yes and appendfsync always, `sealion-bot api` and `sealion-bot
worker` as separate processes, the Telegram stand-in behind a proxy that can refuse
connections."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import WEBHOOK_SECRET, service_env
from tests.faults.proxy import RefusingProxy
from tests.helpers.processes import stop_process
from tests.helpers.services import WorkerProcess
from tests.helpers.waiting import sent_to, wait_until

#: Short leases and sweeps for the tests; benchmarks/recovery.py runs on the defaults.
FAST_RECOVERY = {"LEASE_SECONDS": "4", "LEASE_HEARTBEAT_SECONDS": "1",
                 "RECONCILE_INTERVAL_SECONDS": "1", "RECONCILE_GRACE_SECONDS": "2"}


class Stack:
    def __init__(self, root: Path, telegram, checkpoint: Path, **settings: str) -> None:
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
            REPLY_LANGUAGE_CHECK="false", MAX_NEW_TOKENS="64",
            ASR_BACKEND="off",
            # A step raises in the turns whose text names it (#fault-send, ...), nowhere else.
            FAULT_INJECT="marked", **settings)
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

    def generating(self) -> bool:
        """Whether a generation is running now (its lease key exists)."""
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            return any(client.scan_iter(match="sealion:lease:*:generating"))
        finally:
            client.close()

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
        stop_process(self.api, 20)
        self.http.close()
        self.api_log.close()
        self.proxy.refuse()
        self.redis.stop()
