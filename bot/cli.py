"""The `sealion-bot` command: dev (everything in one), api, worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from bot.settings import get_settings


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _worker_argv(queues: str, concurrency: int, loglevel: str, pool: str) -> list[str]:
    return ["worker", "--queues", queues, "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]


@click.group()
def main() -> None:
    """sealion-bot: SEA-LION vision-language models on Telegram, LINE and WhatsApp."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--concurrency", default=16, show_default=True, type=int,
              help="Worker threads (they share one model).")
def dev(host: str, port: int, concurrency: int) -> None:
    """Run everything on this machine: Redis (embedded when REDIS_URL is unset), API, worker."""
    import uvicorn

    from bot.embedded_redis import EmbeddedRedis

    settings = get_settings()
    _logging(settings.log_level)
    log = logging.getLogger("sealion.dev")
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(Path(settings.data_dir) / "redis").start()
        os.environ["REDIS_URL"] = embedded.url
        get_settings.cache_clear()
        log.info("embedded Redis at %s (data in %s)", embedded.url, embedded.data_dir)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app:app",
         *_worker_argv("io,inference", concurrency, settings.log_level, "threads")],
        env=dict(os.environ),
    )
    try:
        from bot.app import create_app

        uvicorn.run(create_app(get_settings()), host=host, port=port,
                    log_level=settings.log_level.lower())
    finally:
        log.info("stopping worker")
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if embedded:
            embedded.stop()


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", "processes", default=1, show_default=True, type=int)
def api(host: str, port: int, processes: int) -> None:
    """Run the webhook API (no model in this process)."""
    import uvicorn

    settings = get_settings()
    _logging(settings.log_level)
    uvicorn.run("bot.app:create_app", factory=True, host=host, port=port, workers=processes,
                log_level=settings.log_level.lower())


@main.command()
@click.option("--queues", default="io,inference", show_default=True,
              help="io (platform work), inference (the model), or both.")
@click.option("--concurrency", default=16, show_default=True, type=int)
@click.option("--pool", default="threads", show_default=True,
              type=click.Choice(["threads", "prefork", "solo"]),
              help="threads lets many inference tasks share one model (batching).")
def worker(queues: str, concurrency: int, pool: str) -> None:
    """Run a Celery worker."""
    settings = get_settings()
    _logging(settings.log_level)
    from workers.celery_app import app

    app.worker_main(_worker_argv(queues, concurrency, settings.log_level, pool))


if __name__ == "__main__":
    main()
