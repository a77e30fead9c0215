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

from bot.kernel.logs import configure_logging
from bot.kernel.processes import (
    die_with_parent,
    stop_on_signals,
    terminate,
    watch_parent,
    with_parent,
)
from bot.kernel.settings import Settings, get_settings


def _logging(settings: Settings, text: bool | None = None) -> None:
    configure_logging(settings, text=text)


def _check_listen(settings: Settings, host: str) -> Settings:
    """No Telegram webhook without a secret. Beyond this machine TELEGRAM_WEBHOOK_SECRET must
    be set; on loopback, when it is not, one is generated in DATA_DIR (every process of this
    installation reads the same file). Returns the settings to use."""
    try:
        warning = settings.check_listen_address(host)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from bot.kernel.messages import Platform
    from bot.web.webhooks import WEBHOOK_SECRET_FILE, webhook_served, with_webhook_secret

    log = logging.getLogger("sealion")
    resolved = settings
    if webhook_served(settings, Platform.TELEGRAM):
        try:
            resolved = with_webhook_secret(settings)
        except OSError as exc:
            raise click.ClickException(f"no Telegram webhook secret: set "
                                       f"TELEGRAM_WEBHOOK_SECRET or make DATA_DIR writable "
                                       f"({exc})") from None
    if resolved is not settings and resolved.telegram_webhook_secret is not None:
        log.info("Telegram webhook secret: the one generated in %s (`sealion-bot set-webhook "
                 "telegram --url ...` registers it)", Path(settings.data_dir) / WEBHOOK_SECRET_FILE)
    elif warning:
        log.warning(warning)
    return resolved


def _child_env(**overrides: str) -> dict[str, str]:
    """The environment of a process this command starts: ours, and the settings we resolved
    (an embedded Redis's URL, a default we chose) made explicit for it. Ours stays as it was."""
    return {**os.environ, **overrides}


#: Seconds the API waits for requests in flight when asked to stop.
GRACEFUL_SECONDS = 25


def _worker_argv(queues: str, concurrency: int, loglevel: str, pool: str) -> list[str]:
    """`celery worker`'s arguments. No heartbeat events, gossip or mingle: idle broker traffic
    (a PUBLISH every 2 s per worker, and more per peer) that nothing here reads; liveness is
    the worker registry (workers/lifecycle.py). See workers/celery_app.py."""
    return ["worker", "--queues", queues, "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--without-heartbeat", "--without-gossip",
            "--without-mingle"]


def _worker_command(queues: str, concurrency: int, *, beat: bool = False) -> list[str]:
    """`sealion-bot worker` as a child process of `dev` or `chat` (which said their own
    startup summary already)."""
    argv = [sys.executable, "-m", "bot.cli", "worker", "--queues", queues, "--concurrency",
            str(concurrency), "--pool", "threads", "--no-summary", "--parent", str(os.getpid())]
    return argv + (["--beat"] if beat else [])


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
    from bot.kernel.datadir import claim_data_dir

    settings = get_settings()
    # SIGTERM (a process manager, `kill`) stops everything dev started, as Ctrl-C does: each
    # thing started registers its stop on `started`, undone in reverse order (the embedded
    # Redis last: the worker hands its turns back through it). Children die with dev even when
    # dev is killed (a parent-death signal, `bot.kernel.processes`).
    stop_on_signals()
    # A person watches `dev` in a terminal: text lines unless LOG_FORMAT says otherwise.
    text_logs = "log_format" not in settings.model_fields_set
    _logging(settings, text=True if text_logs else None)
    log = logging.getLogger("sealion.dev")
    # Before anything writes there: the log, the Redis data and secrets are the operator's alone.
    claim_data_dir(settings.data_dir)
    settings = _check_listen(settings, host)
    from bot.kernel.logs import redact_url
    from storage.log import upgrade_database

    upgrade_database(settings.database_url)
    log.info("conversation log at %s", redact_url(settings.database_url))
    try:
        _dev_run(settings, host, port, concurrency, text_logs)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, everything stopped
        log.info("stopped")


def _dev_run(settings: Settings, host: str, port: int, concurrency: int,
             text_logs: bool) -> None:
    import contextlib

    import uvicorn

    from bot.cli.embedded_redis import EmbeddedRedis
    from bot.kernel.datadir import write_private

    log = logging.getLogger("sealion.dev")
    with contextlib.ExitStack() as started:
        # What dev decides for itself and its worker: the embedded Redis (when REDIS_URL is
        # unset), the /chat page (on unless WEB_CHAT says no), text logs.
        chosen: dict[str, str] = {"LOG_FORMAT": "text"} if text_logs else {}
        updates: dict[str, object] = {}
        embedded = None
        if not settings.redis_url and not settings.redis_sentinels:
            embedded = EmbeddedRedis(Path(settings.data_dir) / "redis")
            started.callback(embedded.stop)
            embedded.start()
            chosen["REDIS_URL"] = updates["redis_url"] = embedded.url  # our processes only
            # `sealion-bot chat` in another terminal finds this Redis through the file (0600).
            started.callback(_dev_redis_file(settings).unlink, missing_ok=True)
            write_private(_dev_redis_file(settings), embedded.url)
            log.info("embedded Redis at %s (data in %s)", embedded.display_url,
                     embedded.data_dir)
        if "web_chat" not in settings.model_fields_set:
            chosen["WEB_CHAT"] = "true"
            updates["web_chat"] = True
        if settings.telegram_webhook_secret is not None:
            chosen["TELEGRAM_WEBHOOK_SECRET"] = \
                settings.telegram_webhook_secret.get_secret_value()
        settings = settings.model_copy(update=updates)
        from bot.cli.startup import summary

        click.echo(summary(settings, "dev", host=host, port=port, redis_note=(
            f"embedded at {embedded.display_url} (password in {embedded.password_file}): for "
            "development only, production sets REDIS_URL" if embedded else None)))
        from bot.composition import Services

        services = Services(settings)
        started.callback(services.close)
        from bot.cli.supervisor import WorkerSupervisor

        # The worker is started again if it dies (its turns are resumed by the reconciler);
        # beat schedules the retention purge (one process on one machine runs it). Stopped
        # with SIGTERM (it hands its turns back), SIGKILL if still there after its grace.
        worker = WorkerSupervisor(_worker_command("io,inference", concurrency, beat=True),
                                  env=_child_env(**chosen),
                                  grace=settings.stop_grace_seconds + 5)
        started.callback(worker.stop)
        started.callback(log.info, "stopping worker")
        worker.start()
        if settings.telegram_polling and settings.telegram_enabled:
            from bot.cli.polling import start_polling_thread

            polling = start_polling_thread(services)
            started.callback(polling[1].set)
        from bot.web.app import create_app

        class Server(uvicorn.Server):
            """uvicorn, which on a signal also tells the worker to stop at once: it hands its
            turns back while the API finishes the requests in flight."""

            def handle_exit(self, sig: int, frame: Any) -> None:
                worker.begin_stop()
                super().handle_exit(sig, frame)

        Server(uvicorn.Config(create_app(settings, services=services), host=host, port=port,
                              log_config=None, timeout_graceful_shutdown=GRACEFUL_SECONDS,
                              forwarded_allow_ips=settings.forwarded_allow_ips)).run()


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", "processes", default=1, show_default=True, type=int)
def api(host: str, port: int, processes: int) -> None:
    """Run the webhook API (no model in this process)."""
    import uvicorn

    settings = get_settings()
    _logging(settings)
    settings = _check_listen(settings, host)
    from bot.cli.startup import summary

    click.echo(summary(settings, "api", host=host, port=port))
    # On SIGTERM uvicorn stops accepting, lets requests in flight finish, then exits (with
    # --workers N, after its N processes: they also die with it if it is killed).
    # X-Forwarded-For/-Proto are believed from FORWARDED_ALLOW_IPS only (the reverse proxy).
    uvicorn.run("bot.cli.main:api_app", factory=True, host=host, port=port, workers=processes,
                log_config=None, timeout_graceful_shutdown=GRACEFUL_SECONDS,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)


def api_app() -> Any:
    """The web app of `api`; in each process of `api --workers N` (spawned by uvicorn's
    supervisor), set to die with that supervisor, however it ends."""
    import multiprocessing

    from bot.web.app import create_app

    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(signal.SIGTERM, parent.pid)
    return create_app()


@main.command()
@click.option("--queues", default="io,inference", show_default=True,
              help="io (platform work), inference (the model), or both.")
@click.option("--concurrency", default=16, show_default=True, type=int)
@click.option("--pool", default="threads", show_default=True,
              type=click.Choice(["threads", "prefork", "solo"]),
              help="threads lets many inference tasks share one model (batching).")
@click.option("--beat", is_flag=True,
              help="Also run the scheduler (the daily retention purge); one worker is enough.")
@click.option("--no-summary", is_flag=True, hidden=True,
              help="Say nothing at start (the worker of `dev` or `chat`, which did).")
@click.option("--parent", type=int, default=None, hidden=True,
              help="Stop when this process (`dev` or `chat`) is gone, however it went.")
def worker(queues: str, concurrency: int, pool: str, beat: bool, no_summary: bool,
           parent: int | None) -> None:
    """Run a Celery worker."""
    settings = get_settings()
    _logging(settings)
    if parent is not None:
        from workers.lifecycle import EXIT_SECONDS

        # Its stop: the steps' grace, the hand-back (bounded), Celery's teardown.
        watch_parent(parent, settings.stop_grace_seconds + 2 * EXIT_SECONDS + 2)
    if not no_summary:
        from bot.cli.startup import summary

        click.echo(summary(settings, "worker", model_state=None if "inference" in queues
                           else "not loaded here: this worker has no inference queue"))
    from bot.composition import Services

    app = Services(settings).worker_app()
    argv = _worker_argv(queues, concurrency, settings.log_level, pool)
    if beat:
        from bot.kernel.datadir import private_dir

        private_dir(settings.data_dir)
        argv += ["--beat", "--schedule", str(Path(settings.data_dir) / "celerybeat-schedule")]
    app.worker_main(argv)


def _dev_redis_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "dev-redis-url"


@main.command()
def poll() -> None:
    """Get Telegram updates by long polling (no public URL needed); Ctrl-C stops it."""
    import threading

    from adapters.telegram_polling import PollingError
    from bot.cli.polling import run_polling
    from bot.composition import Services

    settings = get_settings()
    _logging(settings)
    if not settings.telegram_enabled:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN (a token from @BotFather) first")
    stop = threading.Event()
    # SIGTERM as Ctrl-C: it interrupts a long poll (TELEGRAM_POLLING_TIMEOUT_SECONDS) at once.
    stop_on_signals()
    services = Services(settings)
    try:
        run_polling(services, stop)
    except KeyboardInterrupt:
        stop.set()
    except PollingError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        services.close()
    click.echo("polling stopped")


@main.command()
@click.option("--conversation", default="terminal", show_default=True,
              help="The conversation's name; each name keeps its own history and language.")
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for each answer.")
def chat(conversation: str, timeout: float) -> None:
    """Talk to the bot in this terminal, through the same pipeline as the platforms.

    Uses REDIS_URL, or the Redis of a `sealion-bot dev` running here; with neither, starts
    its own Redis and worker. /image PATH [caption] sends a photo, /file PATH [question] a
    document (PDF, Word, text); /reset, /lang xx; /quit."""
    import redis as redis_lib

    from bot.cli.console import PROMPT, ConsoleChat
    from bot.composition import Services

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    # SIGTERM as Ctrl-C: the worker and the Redis this chat started are stopped (and die with
    # it if it is killed: a parent-death signal).
    stop_on_signals()
    started: list[Any] = []
    redis_url = settings.redis_url
    sentinels = bool(settings.redis_sentinels)  # then never an embedded Redis
    if not redis_url and not sentinels and _dev_redis_file(settings).exists():
        redis_url = _dev_redis_file(settings).read_text().strip()
    services: Services | None = None
    try:
        try:
            if not sentinels:
                redis_lib.Redis.from_url(redis_url or settings.effective_redis_url,
                                         socket_connect_timeout=2).ping()
        except redis_lib.RedisError:
            from bot.cli.embedded_redis import EmbeddedRedis
            from bot.kernel.datadir import claim_data_dir

            claim_data_dir(settings.data_dir)
            embedded = EmbeddedRedis(Path(settings.data_dir) / "redis")
            started.append(embedded)
            embedded.start()
            redis_url = embedded.url
        if redis_url:
            settings = settings.model_copy(update={"redis_url": redis_url})
        services = Services(settings)
        if not services.worker_registry.alive():
            redis_env = {} if sentinels else {"REDIS_URL": settings.effective_redis_url}
            worker = _ChatWorker(services, _child_env(**redis_env, LOG_FORMAT="text"))
            started.append(worker)
            worker.wait_ready()
        session = ConsoleChat(services, conversation, click.echo, timeout=timeout)
        interactive = sys.stdin.isatty()
        if interactive:
            click.echo("Talking to SEA-LION. /image PATH [caption] sends a photo, /file PATH "
                       "[question] a document to read, /reset forgets, /lang xx picks the "
                       "reply language, /quit leaves.")
        try:
            session.run(sys.stdin, (lambda: click.echo(PROMPT, nl=False)) if interactive
                        else None)
        except KeyboardInterrupt:
            click.echo()
    finally:
        if services is not None:
            services.close()
        for thing in reversed(started):
            thing.stop()


class _ChatWorker:
    """A worker started by `sealion-bot chat` when none runs; its log goes to a file. It dies
    with the chat, however the chat ends (a parent-death signal)."""

    def __init__(self, services: Any, env: dict[str, str]) -> None:
        from bot.kernel.datadir import claim_data_dir

        self.services = services
        settings = services.settings
        claim_data_dir(settings.data_dir)  # the worker's log (0600)
        self.log_path = Path(settings.data_dir) / "chat-worker.log"
        self.grace = settings.stop_grace_seconds + 5
        click.echo(f"starting a worker for this chat (log: {self.log_path}); loading the "
                   "model can take minutes")
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(_worker_command("io,inference", 4), env=env,
                                            stdout=log_file, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=with_parent())

    def wait_ready(self) -> None:
        """Until its model is ready; a clear error if it failed or the worker exited."""
        import time

        services = self.services
        while self.process.poll() is None:
            chats = services.model_status.of_kind(services.worker_registry.alive(), "chat")
            states = {r.get("state") for r in chats.values()}
            if "ready" in states:
                return
            if states == {"failed"}:
                click.echo(next(iter(chats.values())).get("reason", ""), err=True)
                raise click.ClickException("no model to talk to (see above)")
            time.sleep(0.5)
        raise click.ClickException(f"the worker exited; see {self.log_path}")

    def stop(self) -> None:
        terminate(self.process, self.grace)


@main.command("detect-language")
@click.option("--unbuffered", "-u", is_flag=True,
              help="Flush after every line (for a program that waits on each answer).")
def detect_language(unbuffered: bool) -> None:
    """Read messages from stdin, one a line; print each one's language code ('und' when
    nothing can be told), one a line, in order."""
    from bot.kernel.language import detect

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
    from bot.composition import Services
    from bot.kernel.messages import Platform

    settings = get_settings()
    chosen = Platform(platform)
    if not adapter_class(chosen).enabled(settings):
        raise click.ClickException(f"{platform} is not configured: set its credentials first")
    if chosen is Platform.TELEGRAM:
        from bot.web.webhooks import with_webhook_secret

        # The secret the API checks: TELEGRAM_WEBHOOK_SECRET, or the one kept in DATA_DIR.
        settings = with_webhook_secret(settings)

    async def go() -> None:
        adapter = Services(settings).new_adapter(chosen)
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


@main.command("healthcheck")
def healthcheck() -> None:
    """Exit 0 when a worker of this host beat within the last minute, else 1 (the worker
    containers' health check; workers beat every few seconds)."""
    import socket

    import redis as redis_lib

    from bot.composition import Services

    services = Services(get_settings())
    try:
        alive = services.worker_registry.alive_on(socket.gethostname(), within=60.0)
    except redis_lib.RedisError:
        alive = False
    finally:
        services.close()
    sys.exit(0 if alive else 1)


@main.command("migrate")
@click.option("--database-url", default=None, metavar="URL",
              help="The conversation log's database (default: DATABASE_URL).")
def migrate(database_url: str | None) -> None:
    """Create or update the conversation log's tables (Alembic upgrade head)."""
    from bot.kernel.logs import redact_url
    from storage.log import upgrade_database

    settings = get_settings()
    _logging(settings, text=True)
    url = database_url or settings.database_url
    upgrade_database(url)
    click.echo(f"conversation log at {redact_url(url)} is up to date")


@main.group()
def ratings() -> None:
    """Ratings of answers (👍/👎 buttons and reactions) kept in the conversation log."""


@ratings.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (default: standard output).")
@click.option("--since", default=None, metavar="YYYY-MM-DD", help="Rated on or after this day.")
@click.option("--database-url", default=None, metavar="URL",
              help="The conversation log's database (default: DATABASE_URL).")
def ratings_export(output: Path | None, since: str | None, database_url: str | None) -> None:
    """Rated pairs as JSON Lines (prompt, answer, language, rating, source, platform, time),
    for evaluating the model; no ids, names or phone numbers."""
    import datetime as dt
    import json

    from storage.log import ConversationLog, upgrade_database

    settings = get_settings()
    _logging(settings, text=True)
    start = None
    if since:
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(since), dt.time.min, tzinfo=dt.UTC)
        except ValueError:
            raise click.BadParameter("a day as YYYY-MM-DD", param_hint="--since") from None
    url = database_url or settings.database_url
    upgrade_database(url)
    conversation_log = ConversationLog(url)
    count = 0
    stream = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for pair in conversation_log.rated_pairs(since=start):
            stream.write(json.dumps(pair, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if output:
            stream.close()
        conversation_log.close()
    if output:
        click.echo(f"{count} rated answer(s) written to {output}", err=True)


@main.group()
def knowledge() -> None:
    """The operator's knowledge base: documents the bot answers from (KNOWLEDGE_MODE)."""


def _knowledge_services() -> Any:
    from bot.composition import Services
    from storage.log import upgrade_database

    settings = get_settings()
    _logging(settings, text=True)
    upgrade_database(settings.database_url)
    return Services(settings)


@knowledge.command("add")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", default=None, help="The title its sources show (one document).")
def knowledge_add(paths: tuple[Path, ...], title: str | None) -> None:
    """Add PDF, DOCX, Markdown, HTML or text files."""
    from storage.knowledge import AlreadyThere
    from workers.documents import DocumentError
    from workers.documents import Problem as DocumentProblem

    if title and len(paths) > 1:
        raise click.UsageError("--title names one document; give one PATH with it")
    services = _knowledge_services()
    failed = False
    try:
        limit = services.settings.knowledge_max_file_bytes
        for path in paths:
            try:
                if path.stat().st_size > limit:
                    raise DocumentError(DocumentProblem.TOO_LARGE, f"over {limit} bytes")
                row = services.add_document(path.read_bytes(), path.name, title=title)
            except (DocumentError, AlreadyThere) as exc:
                click.echo(f"{path.name}: {exc}", err=True)
                failed = True
                continue
            click.echo(f"added #{row.id} {row.title} ({row.passages} passages)")
    finally:
        services.close()
    if failed:
        sys.exit(1)


@knowledge.command("list")
def knowledge_list() -> None:
    """The documents: id, title, file, pages, passages, added."""
    services = _knowledge_services()
    try:
        rows = services.knowledge.documents()
    finally:
        services.close()
    if not rows:
        click.echo("the knowledge base is empty")
    for r in rows:
        pages = f"{r.pages} pages" if r.pages else "-"
        click.echo(f"#{r.id}\t{r.title}\t{r.filename or '-'}\t{pages}\t"
                   f"{r.passages} passages\t{r.created_at:%Y-%m-%d %H:%M}")


@knowledge.command("remove")
@click.argument("document_id", type=int)
def knowledge_remove(document_id: int) -> None:
    """Remove a document and its passages."""
    services = _knowledge_services()
    try:
        row = services.knowledge.remove(document_id)
    finally:
        services.close()
    if row is None:
        raise click.ClickException(f"no document #{document_id}")
    click.echo(f"removed #{row.id} {row.title}")


@knowledge.command("reindex")
def knowledge_reindex() -> None:
    """Re-tokenise the stored passages if another token scheme made them (a search and an add
    do it by themselves when needed); with KNOWLEDGE_EMBEDDING_MODEL, embed the passages that
    have no vector of that model (another model's vectors are made again)."""
    services = _knowledge_services()
    try:
        done = services.knowledge.reindex()
        embedder = services.embedder
        embedded = services.knowledge.embed_missing() if embedder is not None else None
    finally:
        services.close()
    click.echo("the index is current" if done is None else f"re-tokenised {done} passages")
    if embedder is not None:
        click.echo(f"embedding model {embedder.model} did not load: {embedder.health().reason}"
                   if embedded is None else f"embedded {embedded} passages with {embedder.model}")


@knowledge.command("search")
@click.argument("query")
@click.option("--k", "top_k", default=5, show_default=True)
def knowledge_search(query: str, top_k: int) -> None:
    """The passages a question finds, best first (for checking what the bot will see)."""
    services = _knowledge_services()
    try:
        hits = services.knowledge.search(query, top_k)
    finally:
        services.close()
    for h in hits:
        page = f" p.{h.page}" if h.page else ""
        cosine = "" if h.similarity is None else f" {h.similarity:5.2f}"
        click.echo(f"{h.score:6.2f} {h.relevance:4.2f}{cosine} #{h.document_id}{page} {h.title}: "
                   f"{h.text[:80]}")


if __name__ == "__main__":
    main()
