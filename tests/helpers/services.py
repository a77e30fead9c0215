"""Real processes for the tests: a Celery worker of ours, run as `sealion-bot worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from storage.keys import KeyBuilder


class WorkerProcess:
    """`sealion-bot worker` in its own process group, so a test can kill it like an OOM would."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "io,inference",
                 concurrency: int = 8) -> None:
        self.env = env
        self.log_path = log_path
        self.queues = queues
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, redis_url: str, timeout: float = 120.0) -> WorkerProcess:
        client = redis.Redis.from_url(redis_url)
        before = {m for m in client.zrange(KeyBuilder().workers(), 0, -1)}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--queues", self.queues,
             "--concurrency", str(self.concurrency)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = {m for m in client.zrange(KeyBuilder().workers(), 0, -1)}
            if now - before and self._model_ready():
                client.close()
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        client.close()
        self.kill()  # not left behind: no fixture holds it to stop it
        raise RuntimeError(f"worker did not become ready; log:\n{self.tail()}")

    def _model_ready(self) -> bool:
        if "inference" not in self.queues:
            return True
        # The log record itself: the startup summary mentions 'model ready' before it is.
        return '"message": "model ready"' in self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole worker: no ack, no cleanup, as when a machine dies."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
