"""The `sealion-bot` command: dev (everything in one), api, worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from bot.logs import configure_logging
from bot.settings import Settings, get_settings


def _logging(settings: Settings, text: bool | None = None) -> None:
    configure_logging(settings, text=text)


def _check_listen(settings: Settings, host: str) -> None:
    """No unsigned Telegram webhook beyond this machine; on loopback, a warning."""
    try:
        warning = settings.check_listen_address(host)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if warning:
        logging.getLogger("sealion").warning(warning)


#: Seconds the API waits for requests in flight when asked to stop.
GRACEFUL_SECONDS = 25


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
    # A person watches `dev` in a terminal: text lines unless LOG_FORMAT says otherwise.
    _logging(settings, text=None if "log_format" in settings.model_fields_set else True)
    log = logging.getLogger("sealion.dev")
    _check_listen(settings, host)
    from storage.log import redact_url, upgrade_database

    upgrade_database(settings.database_url)
    log.info("conversation log at %s", redact_url(settings.database_url))
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(Path(settings.data_dir) / "redis").start()
        os.environ["REDIS_URL"] = embedded.url
        # `sealion-bot chat` in another terminal finds this Redis through the file.
        _dev_redis_file(settings).write_text(embedded.url)
        log.info("embedded Redis at %s (data in %s)", embedded.url, embedded.data_dir)
    if "web_chat" not in settings.model_fields_set:
        os.environ["WEB_CHAT"] = "true"  # the /chat page is on in dev unless WEB_CHAT says no
    get_settings.cache_clear()
    settings = get_settings()
    from bot.startup import summary

    click.echo(summary(settings, "dev", host=host, port=port, redis_note=(
        f"embedded at {embedded.url} (data in {embedded.data_dir})" if embedded else None)))
    polling = None
    if settings.telegram_polling and settings.telegram_enabled:
        from bot.polling import start_polling_thread

        polling = start_polling_thread(settings)
    from bot.supervisor import WorkerSupervisor

    # The worker is started again if it dies (its turns are resumed by the reconciler).
    worker = WorkerSupervisor(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app:app",
         *_worker_argv("io,inference", concurrency, settings.log_level, "threads"),
         # Beat schedules the retention purge; one process on one machine runs it.
         "--beat", "--schedule", str(Path(settings.data_dir) / "celerybeat-schedule")],
        env={**os.environ, "LOG_FORMAT": settings.log_format
             if "log_format" in settings.model_fields_set else "text"},
    ).start()
    try:
        from bot.app import create_app

        uvicorn.run(create_app(get_settings()), host=host, port=port, log_config=None,
                    timeout_graceful_shutdown=GRACEFUL_SECONDS,
                    forwarded_allow_ips=settings.forwarded_allow_ips)
    finally:
        if polling is not None:
            polling[1].set()
        if embedded:
            _dev_redis_file(settings).unlink(missing_ok=True)
        log.info("stopping worker")
        worker.stop()
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
    _logging(settings)
    _check_listen(settings, host)
    from bot.startup import summary

    click.echo(summary(settings, "api", host=host, port=port))
    # On SIGTERM uvicorn stops accepting, lets requests in flight finish, then exits.
    # X-Forwarded-For/-Proto are believed from FORWARDED_ALLOW_IPS only (the reverse proxy).
    uvicorn.run("bot.app:create_app", factory=True, host=host, port=port, workers=processes,
                log_config=None, timeout_graceful_shutdown=GRACEFUL_SECONDS,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)


@main.command()
@click.option("--queues", default="io,inference", show_default=True,
              help="io (platform work), inference (the model), or both.")
@click.option("--concurrency", default=16, show_default=True, type=int)
@click.option("--pool", default="threads", show_default=True,
              type=click.Choice(["threads", "prefork", "solo"]),
              help="threads lets many inference tasks share one model (batching).")
@click.option("--beat", is_flag=True,
              help="Also run the scheduler (the daily retention purge); one worker is enough.")
def worker(queues: str, concurrency: int, pool: str, beat: bool) -> None:
    """Run a Celery worker."""
    settings = get_settings()
    _logging(settings)
    from bot.startup import summary

    click.echo(summary(settings, "worker", model_state=None if "inference" in queues
                       else "not loaded here: this worker has no inference queue"))
    from workers.celery_app import app

    argv = _worker_argv(queues, concurrency, settings.log_level, pool)
    if beat:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        argv += ["--beat", "--schedule", str(Path(settings.data_dir) / "celerybeat-schedule")]
    app.worker_main(argv)


def _dev_redis_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "dev-redis-url"


@main.command()
def poll() -> None:
    """Get Telegram updates by long polling (no public URL needed); Ctrl-C stops it."""
    import threading

    from adapters.telegram_polling import PollingError
    from bot.polling import run_polling

    settings = get_settings()
    _logging(settings)
    if not settings.telegram_enabled:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN (a token from @BotFather) first")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_polling(settings, stop)
    except KeyboardInterrupt:
        stop.set()
    except PollingError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("polling stopped")


@main.command()
@click.option("--conversation", default="terminal", show_default=True,
              help="The conversation's name; each name keeps its own history and language.")
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for each answer.")
def chat(conversation: str, timeout: float) -> None:
    """Talk to the bot in this terminal, through the same pipeline as the platforms.

    Uses REDIS_URL, or the Redis of a `sealion-bot dev` running here; with neither, starts
    its own Redis and worker. /image PATH [caption] sends a photo; /reset, /lang xx; /quit."""
    import redis as redis_lib

    from bot.console import PROMPT, ConsoleChat

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    started: list[Any] = []
    if not settings.redis_url and _dev_redis_file(settings).exists():
        os.environ["REDIS_URL"] = _dev_redis_file(settings).read_text().strip()
        get_settings.cache_clear()
        settings = get_settings()
    try:
        redis_lib.Redis.from_url(settings.effective_redis_url, socket_connect_timeout=2).ping()
    except redis_lib.RedisError:
        from bot.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(Path(settings.data_dir) / "redis").start()
        started.append(embedded)
        os.environ["REDIS_URL"] = embedded.url
        get_settings.cache_clear()
        settings = get_settings()
    try:
        if not _worker_alive(settings):
            started.append(_ChatWorker(settings))
        session = ConsoleChat(settings, conversation, click.echo, timeout=timeout)
        interactive = sys.stdin.isatty()
        if interactive:
            click.echo("Talking to SEA-LION. /image PATH [caption] sends a photo, /reset "
                       "forgets, /lang xx picks the reply language, /quit leaves.")
        try:
            session.run(sys.stdin, (lambda: click.echo(PROMPT, nl=False)) if interactive
                        else None)
        except KeyboardInterrupt:
            click.echo()
        finally:
            session.close()
    finally:
        for thing in reversed(started):
            thing.stop()


def _worker_alive(settings: Settings) -> bool:
    import redis as redis_lib

    from storage.conversations import WorkerRegistry

    client = redis_lib.Redis.from_url(settings.effective_redis_url, socket_timeout=5)
    try:
        return bool(WorkerRegistry(client).alive())
    finally:
        client.close()


class _ChatWorker:
    """A worker started by `sealion-bot chat` when none runs; its log goes to a file."""

    def __init__(self, settings: Settings) -> None:
        import time

        import redis as redis_lib

        from storage.conversations import WorkerRegistry
        from storage.model_status import ModelStatusBoard

        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(settings.data_dir) / "chat-worker.log"
        click.echo(f"starting a worker for this chat (log: {self.log_path}); loading the "
                   "model can take minutes")
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app:app",
                 *_worker_argv("io,inference", 4, settings.log_level, "threads")],
                env={**os.environ, "LOG_FORMAT": "text"}, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True)
        client = redis_lib.Redis.from_url(settings.effective_redis_url, socket_timeout=5)
        try:
            while self.process.poll() is None:
                reports = ModelStatusBoard(client).of(WorkerRegistry(client).alive())
                states = {r.get("state") for r in reports.values()}
                if "ready" in states:
                    return
                if states == {"failed"}:
                    click.echo(next(iter(reports.values())).get("reason", ""), err=True)
                    self.stop()
                    raise click.ClickException("no model to talk to (see above)")
                time.sleep(0.5)
        finally:
            client.close()
        raise click.ClickException(f"the worker exited; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@main.command("detect-language")
@click.option("--unbuffered", "-u", is_flag=True,
              help="Flush after every line (for a program that waits on each answer).")
def detect_language(unbuffered: bool) -> None:
    """Read messages from stdin, one a line; print each one's language code ('und' when
    nothing can be told), one a line, in order."""
    from bot.language import detect

    # Answers go out in batches, or line by line when someone types them or asks to.
    interactive = unbuffered or sys.stdin.isatty()
    batch: list[str] = []
    for line in sys.stdin:
        batch.append(detect(line.rstrip("\r\n")).language or "und")
        if interactive or len(batch) >= 512:
            click.echo("\n".join(batch))
            sys.stdout.flush()
            batch.clear()
    if batch:
        click.echo("\n".join(batch))
    sys.stdout.flush()


def _run_adapter(platform: str, call) -> None:
    """Run `call(adapter)` for an enabled platform; a clear error for a disabled one."""
    import asyncio

    from adapters.base import AdapterError, adapter_class
    from bot.messages import Platform

    settings = get_settings()
    cls = adapter_class(Platform(platform))
    if not cls.enabled(settings):
        raise click.ClickException(f"{platform} is not configured: set its credentials first")

    async def go() -> None:
        adapter = cls(settings)
        try:
            click.echo(await call(adapter))
        finally:
            await adapter.aclose()

    try:
        asyncio.run(go())
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc


_PLATFORMS = click.Choice(["telegram", "line", "whatsapp"])


@main.command("set-webhook")
@click.argument("platform", type=_PLATFORMS)
@click.option("--url", required=True, help="https://HOST/webhooks/PLATFORM")
@click.option("--drop-pending", is_flag=True, help="Telegram: discard updates waiting for us.")
def set_webhook(platform: str, url: str, drop_pending: bool) -> None:
    """Register the webhook (Telegram), or check credentials and print the URL (LINE, WhatsApp)."""
    _run_adapter(platform, lambda a: a.register_webhook(url, drop_pending=drop_pending))


@main.command("webhook-info")
@click.argument("platform", type=_PLATFORMS)
def webhook_info(platform: str) -> None:
    """Show what the platform knows of our webhook (Telegram) or check the credentials."""
    import json

    async def info(adapter) -> str:
        return json.dumps(await adapter.webhook_info(), indent=2, ensure_ascii=False)

    _run_adapter(platform, info)


@main.command("migrate")
@click.option("--database-url", default=None, metavar="URL",
              help="The conversation log's database (default: DATABASE_URL).")
def migrate(database_url: str | None) -> None:
    """Create or update the conversation log's tables (Alembic upgrade head)."""
    from storage.log import redact_url, upgrade_database

    settings = get_settings()
    _logging(settings, text=True)
    url = database_url or settings.database_url
    upgrade_database(url)
    click.echo(f"conversation log at {redact_url(url)} is up to date")


if __name__ == "__main__":
    main()
