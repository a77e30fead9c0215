"""A real Celery worker with the service's broker configuration whose tasks only record that
they ran: what the broker and accept-path tests consume their messages with.

The app is `workers.celery_app.create_celery` (the transport of workers/broker.py, acks late,
prefetch 1, the queues) without the turn's tasks; the worker runs with `sealion-bot worker`'s
own arguments (`bot.cli.main._worker_argv`). Each task RPUSHes a JSON record onto `RECORDS`:
its name, arguments, ETA and when it ran. `probe.sleep` records when it starts and again when
it ends.

    ProbeWorker(redis_url, log_path, concurrency=2).start()   # ... .stop() / .kill()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from celery import Celery

RECORDS = "probe:records"


def _app() -> Celery:
    from bot.kernel.settings import Settings
    from workers.celery_app import create_celery

    app = create_celery(Settings(_env_file=None, redis_url=os.environ["REDIS_URL"]))
    app.conf.update(include=[])  # not the turn's tasks: the probes below stand in for them
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    def record(task: Any, **extra: Any) -> None:
        eta = task.request.eta
        client.rpush(RECORDS, json.dumps({
            "task": task.name, "id": task.request.id, "args": list(task.request.args or ()),
            "eta": eta.isoformat() if hasattr(eta, "isoformat") else eta, "at": time.time(),
            **extra}))

    @app.task(bind=True, name="workers.tasks.process_conversation")
    def process_conversation(self: Any, key: dict[str, Any]) -> None:
        record(self)

    @app.task(bind=True, name="probe.record")
    def probe_record(self: Any, tag: str) -> None:
        record(self)

    @app.task(bind=True, name="probe.sleep")
    def probe_sleep(self: Any, tag: str, seconds: float) -> None:
        record(self, phase="start")
        time.sleep(seconds)
        record(self, phase="end")

    return app


if os.environ.get("REDIS_URL") and os.environ.get("SEALION_CELERY_PROBE") == "1":
    app = _app()


def records(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(RECORDS, 0, -1)]


class ProbeWorker:
    """`celery worker` for this module's app, in its own process group."""

    def __init__(self, redis_url: str, log_path: Path, *, concurrency: int = 2,
                 queues: str = "io,inference") -> None:
        self.redis_url, self.log_path = redis_url, log_path
        self.concurrency, self.queues = concurrency, queues
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ProbeWorker:
        from bot.cli.main import _worker_argv

        env = {**os.environ, "REDIS_URL": self.redis_url, "SEALION_CELERY_PROBE": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()),
                                                           os.environ.get("PYTHONPATH")]))}
        argv = [sys.executable, "-m", "celery", "-A", "tests.helpers.celery_probe",
                *_worker_argv(self.queues, self.concurrency, "INFO", "threads")]
        self.process = subprocess.Popen(argv, env=env, stdout=open(self.log_path, "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_path.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"probe worker did not start:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Celery's warm stop: running tasks finish) and wait."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
