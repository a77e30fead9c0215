"""The service in production shape for the fault tests and benchmarks/recovery.py: a real
redis-server with appendonly yes and appendfsync always, `sealion-bot api` and `sealion-bot
worker` as separate processes, the Telegram stand-in behind a proxy that can refuse
connections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from bot.cli.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import WEBHOOK_SECRET, service_env
from tests.faults.proxy import RefusingProxy
from tests.helpers.processes import stop_process
from tests.helpers.redis_group import RedisGroup
from tests.helpers.services import WorkerProcess
from tests.helpers.waiting import has_work, sent_to, wait_until

#: Short leases and sweeps for the tests; benchmarks/recovery.py runs on the defaults.
FAST_RECOVERY = {"LEASE_SECONDS": "4", "LEASE_HEARTBEAT_SECONDS": "1",
                 "RECONCILE_INTERVAL_SECONDS": "1", "RECONCILE_GRACE_SECONDS": "2"}


class Stack:
    def __init__(self, root: Path, telegram, checkpoint: Path, group: RedisGroup | None = None,
                 **settings: str) -> None:
        from storage.log import upgrade_database

        self.root = root
        self.telegram = telegram
        #: With `group` (master, replicas and sentinels) the processes find Redis only
        #: through the sentinels: REDIS_URL names a port nothing listens on, so a client that
        #: ignored REDIS_SENTINELS would fail at once.
        self.group = group
        self.redis = (None if group is not None else
                      EmbeddedRedis(root / "redis", persist=True, fsync_always=True).start())
        redis_url = self.redis.url if self.redis is not None else f"redis://127.0.0.1:{free_port()}/0"
        if group is not None:
            settings = {**group.env(), **settings}
        self.proxy = RefusingProxy(int(telegram.base_url.rsplit(":", 1)[1])).allow()
        database_url = f"sqlite:///{root}/log.db"
        upgrade_database(database_url)
        self.env = service_env(
            redis_url, checkpoint, telegram=self.proxy.base_url, line="http://127.0.0.1:9",
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
        self.workers: list[WorkerProcess] = []
        self._workers = 0

    @property
    def state_url(self) -> str:
        """A plain URL of the master now (the test's own reads)."""
        if self.group is None:
            assert self.redis is not None
            return self.redis.url
        port = self.group.master_port()
        assert port is not None, "no master known to the sentinels"
        return self.group.url(self.group.name_of(port))

    def _api_up(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, queues: str = "io,inference", concurrency: int = 8,
                     **extra: str) -> WorkerProcess:
        self._workers += 1
        log = self.root / f"worker-{self._workers}.log"
        self.worker = WorkerProcess({**self.env, **extra}, log, queues=queues,
                                    concurrency=concurrency).start(self.state_url)
        self.workers.append(self.worker)
        if "inference" not in queues:
            return self.worker
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
        """Whether a turn's request is with the model now (the backlog the busy notice reads
        holds it from the moment it goes to the model until its answer is back)."""
        import redis

        from storage.keys import KeyBuilder

        client = redis.Redis.from_url(self.state_url)
        try:
            return bool(client.zcard(KeyBuilder().backlog()))
        finally:
            client.close()

    def settled(self, *chats: int, within: float = 60.0) -> None:
        """Wait until no turn of `chats` is waiting or under way (all they get has been sent)."""
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            wait_until(lambda: not any(has_work(client, c) for c in chats), within,
                       f"the turns of {len(chats)} chat(s) to finish")
        finally:
            client.close()

    def expect_answers(self, expected: dict[int, int], within: float) -> None:
        """Each chat gets exactly its number of messages: all within `within` seconds, and none
        more once its turns are over."""
        wait_until(lambda: all(len(self.answers(c)) >= n for c, n in expected.items()), within,
                   f"answers to {len(expected)} chat(s)")
        self.settled(*expected)
        got = {c: len(self.answers(c)) for c in expected}
        assert got == expected, {c: self.answers(c) for c in expected}

    def close(self) -> None:
        for worker in self.workers or ([self.worker] if self.worker else []):
            worker.stop()
        stop_process(self.api, 20)
        self.http.close()
        self.api_log.close()
        self.proxy.refuse()
        if self.redis is not None:
            self.redis.stop()
