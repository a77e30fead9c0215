"""Worker start and stop: the heartbeat thread (the worker registry for the API's readiness
check, the turn leases, the reconciler), and the model's warm-up.

The model is loaded once per process after the worker has started (never before a fork), and
only by workers that consume the inference queue with a threads or solo pool.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery.signals import worker_ready, worker_shutdown

from bot.language import warm_up as warm_up_language
from bot.messages import ConversationKey
from bot.startup import explain_model_failure, model_name
from storage.keys import Queue
from storage.model_status import ModelStatusBoard
from workers.celery_app import app, enqueue_conversation
from workers.leases import Heartbeat, Reconciler
from workers.runtime import runtime

log = logging.getLogger(__name__)

_stop = threading.Event()
_name = f"{socket.gethostname()}:{os.getpid()}"
_heartbeat: Heartbeat | None = None


def start_heartbeat() -> Heartbeat:
    """The process's heartbeat thread: the worker registry, the turn leases this process
    holds, and the reconciler (every worker runs one: recovery needs no single scheduler)."""
    global _heartbeat
    if _heartbeat is None:
        rt = runtime()
        s = rt.settings
        def restart(key: ConversationKey) -> None:
            enqueue_conversation(app, key)
            rt.metrics.inc("reconciled")

        reconciler = Reconciler(rt.store, restart, grace_seconds=s.reconcile_grace_seconds)
        _heartbeat = Heartbeat(rt.leases, reconciler, beat_seconds=s.lease_heartbeat_seconds,
                               sweep_seconds=s.reconcile_interval_seconds,
                               on_beat=lambda: rt.workers.beat(_name)).start()
    return _heartbeat


#: A model server that did not answer at start is asked again this often (seconds).
SERVER_RETRY_SECONDS = 30.0


def _report(state: str, reason: str = "") -> None:
    """Tell /readyz (through Redis) how the model is doing."""
    rt = runtime()
    try:
        ModelStatusBoard(rt.redis).report(_name, state, backend=rt.settings.model_backend,
                                          model=model_name(rt.settings), reason=reason)
    except Exception as exc:
        log.warning("model status not recorded: %s", type(exc).__name__)


def _warm_up(retrying: bool = False) -> bool:
    """Load the model; on failure, say why in one paragraph (the traceback only at DEBUG).

    A checkpoint that cannot load will not load later either: requests then fail at once (an
    apology) and /readyz says why. A model server that did not answer is asked again every
    SERVER_RETRY_SECONDS, in a thread of its own (the other models warm up meanwhile)."""
    rt = runtime()
    if not retrying:
        _report("loading")
    try:
        rt.engine()
    except Exception as exc:
        reason = explain_model_failure(rt.settings, exc)
        if retrying:
            log.warning("the model server still does not answer (%s); asking again in %.0fs",
                        type(exc).__name__, SERVER_RETRY_SECONDS)
        else:
            log.error("%s", reason)
        log.debug("model load failed", exc_info=True)
        _report("failed", reason)
        if rt.settings.model_backend != "openai":
            rt.engine_failure = reason
        elif not retrying:
            threading.Thread(target=_retry_server, name="model-server", daemon=True).start()
        return False
    log.info("model ready")
    _report("ready")
    return True


def _retry_server() -> None:
    while not _stop.wait(SERVER_RETRY_SECONDS):
        if _warm_up(retrying=True):
            return


def _warm_up_recogniser() -> None:
    """Load Whisper beside the chat model (ASR_BACKEND=transformers), once per process; a
    failure is logged, and voice notes then get the apology."""
    rt = runtime()
    if rt.settings.effective_asr_backend != "transformers":
        return
    try:
        rt.recogniser().load()
        log.info("speech recogniser ready")
    except Exception as exc:
        log.error("speech recogniser %s failed to load: %s", rt.settings.asr_model_id, exc)


def _warm_up_guard() -> None:
    """Load the guard beside the chat model (GUARD_BACKEND), once per process; a failure is
    logged, and the checks then follow GUARD_FAIL."""
    guard = runtime().moderator.guard
    if guard is None:
        return
    try:
        guard.load()
        log.info("guard ready (%s)", guard.name)
    except Exception as exc:
        log.error("guard failed to load: %s", exc)


def _warm_up_models() -> None:
    _warm_up()
    _warm_up_guard()
    _warm_up_recogniser()


@worker_ready.connect
def _on_ready(sender=None, **_: object) -> None:
    start_heartbeat()
    queues = set(sender.app.amqp.queues.consume_from or {}) if sender is not None else set()
    pool = type(getattr(sender, "pool", None)).__module__ if sender is not None else ""
    if Queue.INFERENCE in queues and "prefork" not in pool:
        # One thread, one model after the other: two threads importing transformers at once
        # race in its lazy imports ("cannot import name AutoModelForImageTextToText").
        threading.Thread(target=_warm_up_models, name="warm-up", daemon=True).start()
    if Queue.IO in queues:
        # The language model loads in about half a second: not on the first user's time.
        threading.Thread(target=warm_up_language, name="language", daemon=True).start()


@worker_shutdown.connect
def _on_shutdown(**_: object) -> None:
    _stop.set()
    if _heartbeat is not None:
        _heartbeat.stop()
    try:
        runtime().workers.leave(_name)
        ModelStatusBoard(runtime().redis).leave(_name)
    except Exception:
        pass
