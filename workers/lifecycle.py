"""Worker start and stop: heartbeats for the API's readiness check, and the model's warm-up.

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
from workers.runtime import runtime

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
_stop = threading.Event()
_name = f"{socket.gethostname()}:{os.getpid()}"


def _heartbeat() -> None:
    while not _stop.is_set():
        try:
            runtime().workers.beat(_name)
        except Exception as exc:  # Redis briefly away: try again at the next beat
            log.warning("heartbeat failed: %s", exc)
        _stop.wait(HEARTBEAT_SECONDS)


def _warm_up() -> None:
    try:
        runtime().engine()
        log.info("model ready")
    except Exception:
        log.exception("model failed to load; inference tasks will answer with an apology")


@worker_ready.connect
def _on_ready(sender=None, **_: object) -> None:
    threading.Thread(target=_heartbeat, name="heartbeat", daemon=True).start()
    queues = set(sender.app.amqp.queues.consume_from or {}) if sender is not None else set()
    pool = type(getattr(sender, "pool", None)).__module__ if sender is not None else ""
    if "inference" in queues and "prefork" not in pool:
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    if "io" in queues:
        # The language model loads in about half a second: not on the first user's time.
        threading.Thread(target=warm_up_language, name="language", daemon=True).start()


@worker_shutdown.connect
def _on_shutdown(**_: object) -> None:
    _stop.set()
    try:
        runtime().workers.leave(_name)
    except Exception:
        pass
