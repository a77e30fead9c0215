"""A worker process's start and stop: the heartbeat thread (the worker registry for the API's
readiness check, the turn leases, the reconciler), and its model hosts' warm-up and health.

`WorkerLife` is made and installed by the composition root (`Services.worker_app`) before the
worker starts. The model hosts (`Services.models`: chat, speech, guard) are loaded once per
process after the worker has started (never before a fork), and only by workers that consume
the inference queue with a threads or solo pool: one thread warms them up one after the other
through their contract (`ModelHost.warm_up`), then, every MODEL_RETRY_SECONDS, asks the model
servers again (whether they answer: a host on a server that went away is unavailable, and
ready again once it is back).

Such a worker publishes its hosts' health (`storage.model_status`, which /readyz shows): at
once when a host's state or reason changes, from the warm-up thread and from the heartbeat
(which looks at the hosts in memory every beat), and otherwise every
`HEALTH_REFRESH_SECONDS` (the details: batches, memory). One Redis command a publication,
nothing per turn. Reasons and details are redacted (URLs, configured secrets) before they
leave the process.

How a worker stops (SIGTERM or SIGINT: Celery's warm shutdown). It takes no new task at once.
The steps it is running (a task: preparing a turn, hearing, generating, delivering) may finish
for STOP_GRACE_SECONDS; a step that finishes queues the turn's next step as usual. Then:

- all steps done in time: the turns this worker still vouches for (their next step waits in a
  queue, or was prefetched here: the broker puts those messages back, `workers.broker`) are
  handed back: their leases are let go (`LeaseKeeper.hand_back`) and each conversation is
  woken, so another worker resumes it now, from what the turn recorded, instead of once the
  lease has lapsed (LEASE_SECONDS) and a reconciler swept (RECONCILE_*: 30 to 50 s by default);
- a step still running after the grace (a long generation, a stuck download) is abandoned:
  its step locks are released, its lease let go and its conversation woken as above, and the
  process exits at once without waiting for its thread (`os._exit`). The resumed turn does that
  step again; what was already done is kept by turn id (the outcome, the parts already sent),
  so nothing is sent twice. The abandoned task's message is gone with the process (the broker
  keeps no copy in Redis): the woken conversation is what carries the turn on.

A turn another worker is generating is left to it (`ConversationStore.hand_back` refuses while
its generation key lives). With the prefork pool the steps run in child processes this stop
does not see: their leases lapse as after a crash. Celery beat, when the worker runs it, is a
child process that dies with the worker (a parent-death signal, `bot.kernel.processes`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from celery.signals import beat_embedded_init, worker_ready, worker_shutdown, worker_shutting_down

from bot.kernel.language import warm_up as warm_up_language
from bot.kernel.logs import RedactSecrets
from bot.kernel.messages import ConversationKey
from bot.kernel.processes import die_with_parent
from bot.kernel.settings import Settings
from bot.kernel.tokens import warm_up as warm_up_tokens
from storage.abuse import Backlog
from storage.conversations import ConversationStore, WorkerRegistry
from storage.keys import Queue
from storage.knowledge import KnowledgeBase
from storage.metrics import RedisMetrics
from storage.model_status import ModelStatusBoard
from workers.decoding import DecodeSandbox
from workers.leases import Heartbeat, LeaseKeeper, Reconciler
from workers.models.failure import explain_host_failure
from workers.models.host import HostHealth, HostKind, HostState, ModelHost, ModelHosts

log = logging.getLogger(__name__)

#: Health that has not changed is published again this often (seconds): its details move.
HEALTH_REFRESH_SECONDS = 60.0
#: Once its turns are handed back, a worker still running this long after is ended (seconds):
#: Celery's own teardown takes milliseconds, unless its broker hangs.
EXIT_SECONDS = 5.0


class WorkerServices(Protocol):
    """What a worker's start and stop use: the composition root's `Services`."""

    settings: Settings
    hosts_models: bool

    @property
    def conversations(self) -> ConversationStore: ...

    @property
    def leases(self) -> LeaseKeeper: ...

    @property
    def metrics(self) -> RedisMetrics: ...

    @property
    def worker_registry(self) -> WorkerRegistry: ...

    @property
    def backlog(self) -> Backlog: ...

    @property
    def model_status(self) -> ModelStatusBoard: ...

    @property
    def models(self) -> ModelHosts: ...

    @property
    def sandbox(self) -> DecodeSandbox: ...

    @property
    def knowledge(self) -> KnowledgeBase: ...

    def enqueue(self, key: ConversationKey) -> None: ...


class WorkerLife:
    """The start and stop of one worker process named `name` ("host:pid")."""

    def __init__(self, services: WorkerServices, name: str, *,
                 refresh_seconds: float = HEALTH_REFRESH_SECONDS) -> None:
        self.services = services
        self.name = name
        #: How often the model servers are asked again (MODEL_RETRY_SECONDS).
        self.retry_seconds = services.settings.model_retry_seconds
        self.refresh_seconds = refresh_seconds
        self.heartbeat: Heartbeat | None = None
        #: Whether this worker hosts the models (and so publishes their health).
        self.hosting = False
        self._stop = threading.Event()
        self._handlers: list[Callable[..., None]] = []
        self._redact = RedactSecrets(services.settings)
        self._publish_lock = threading.Lock()
        self._published: dict[str, tuple[HostState, str]] | None = None
        self._published_at = 0.0
        self._pid = os.getpid()
        self._stop_lock = threading.Lock()
        self._stopping = False  # the hand-back began (it runs once)
        self._stopped = threading.Event()  # ... and ended
        self._watchdog: threading.Thread | None = None

    def install(self) -> None:
        """Connect to Celery's worker signals (kept alive by this object, not weakly)."""
        def ready(sender: Any = None, **_: object) -> None:
            self.on_ready(sender)

        def shutting_down(**_: object) -> None:
            self.on_stop_requested()

        def shutdown(**_: object) -> None:
            self.on_shutdown()

        def beat_started(**_: object) -> None:
            # In celery beat's process, forked by the worker's main thread: it goes when the
            # worker goes, even when the worker is killed or exits without stopping it.
            die_with_parent(signal.SIGTERM, self._pid)

        self._handlers = [ready, shutting_down, shutdown, beat_started]
        self._pid = os.getpid()
        worker_ready.connect(ready, weak=False)
        worker_shutting_down.connect(shutting_down, weak=False)
        worker_shutdown.connect(shutdown, weak=False)
        beat_embedded_init.connect(beat_started, weak=False)

    # --- start ---------------------------------------------------------------------------------
    def on_ready(self, sender: Any = None) -> None:
        self.start_heartbeat()
        queues = set(sender.app.amqp.queues.consume_from or {}) if sender is not None else set()
        pool = type(getattr(sender, "pool", None)).__module__ if sender is not None else ""
        # A worker that runs the models takes its own turns all the way (workers.tasks).
        self.services.hosts_models = Queue.INFERENCE in queues and "prefork" not in pool
        if self.services.hosts_models:
            self.hosting = True
            # One thread, one model after the other: two threads importing transformers at
            # once race in its lazy imports ("cannot import name AutoModelForImageTextToText").
            threading.Thread(target=self.host_models, name="models", daemon=True).start()
        if Queue.IO in queues:
            # The language model loads in about half a second, the knowledge base's index is
            # checked (and made again if another token scheme made it): not on the first
            # user's time.
            threading.Thread(target=self.warm_up_text, name="language", daemon=True).start()

    def warm_up_text(self) -> None:
        warm_up_language()
        self.warm_up_knowledge()

    def warm_up_knowledge(self) -> None:
        """With KNOWLEDGE_MODE not off and documents stored: the index made current
        (`KnowledgeBase.prepare`: with KNOWLEDGE_EMBEDDING_MODEL, the model loaded and the
        missing vectors made) and the Thai dictionary loaded. A failure only logs: the first
        search does the same."""
        if self.services.settings.knowledge_mode == "off":
            return
        try:
            knowledge = self.services.knowledge
            stored = knowledge.prepare()
            embedder = knowledge.embedder
            if isinstance(embedder, ModelHost) and embedder.health().serving:
                log.info("embedding model ready (%s)", embedder.model)
            if stored:
                warm_up_tokens()
        except Exception as exc:  # a database that is not there yet: the first search retries
            log.warning("knowledge base not prepared at start: %s", type(exc).__name__)

    def start_heartbeat(self) -> Heartbeat:
        """The process's heartbeat thread: the worker registry, the turn leases this process
        holds, and the reconciler (every worker runs one: recovery needs no single
        scheduler)."""
        if self.heartbeat is None:
            sv, s = self.services, self.services.settings

            def restart(key: ConversationKey) -> None:
                sv.enqueue(key)
                sv.metrics.inc("reconciled")

            reconciler = Reconciler(sv.conversations, restart,
                                    grace_seconds=s.reconcile_grace_seconds)
            self.heartbeat = Heartbeat(sv.leases, reconciler,
                                       beat_seconds=s.lease_heartbeat_seconds,
                                       sweep_seconds=s.reconcile_interval_seconds,
                                       on_beat=self._beat).start()
        return self.heartbeat

    def _beat(self) -> None:
        self.services.worker_registry.beat(self.name)
        self.services.backlog.sweep()  # entries of turns that died (the busy notice's backlog)
        if self.hosting:
            self.publish_health()

    # --- the model hosts ----------------------------------------------------------------------
    def host_models(self) -> None:
        """Warm up every host, one after the other, publishing each outcome; then, until the
        worker stops, ask the model servers again every `retry_seconds` (in-process hosts
        that are ready stay so, and one that failed will not load later)."""
        self.publish_health(force=True)  # every host "loading"
        for host in self.services.models.all():
            self.warm_up(host)
        while not self._stop.wait(self.retry_seconds):
            for host in self.services.models.all():
                if host.remote:
                    self.warm_up(host, retrying=True)

    def warm_up(self, host: ModelHost, retrying: bool = False) -> HostHealth:
        """Load `host` through its contract and say how it went: in the log (the reason in
        one paragraph; the traceback only at DEBUG) and on the board.

        A checkpoint that cannot load will not load later either: the host fails, its
        requests fail at once (an apology, or GUARD_FAIL) and /readyz says why. A server that
        does not answer leaves its host unavailable until it does (`host_models` asks)."""
        kind = host.kind
        before = host.health()
        if not retrying:
            log.info("loading the %s model (%s, %s)", kind, before.details.get("backend"),
                     before.details.get("base_url") or before.details.get("model"))
        health = host.warm_up(explain=partial(explain_host_failure, self.services.settings,
                                              kind))
        if retrying and health.state is before.state:
            if health.state is HostState.UNAVAILABLE:
                log.debug("the %s model still cannot serve: %s", kind, health.reason)
        elif health.serving:
            # The chat model's line is the one tests and operators wait for.
            log.info("model ready" if kind is HostKind.CHAT else f"{kind} model ready")
        elif kind is HostKind.CHAT and not retrying:
            log.error("%s", health.reason)
        else:
            log.warning("%s", health.reason)
        self.publish_health()
        return health

    def publish_health(self, force: bool = False) -> bool:
        """Publish the hosts' health when a state or reason changed, when `refresh_seconds`
        passed, or when `force`d (one Redis command); whether it was published."""
        health = {host.kind.value: host.health() for host in self.services.models.all()}
        signature = {kind: (h.state, h.reason) for kind, h in health.items()}
        with self._publish_lock:
            now = time.monotonic()
            if (not force and signature == self._published
                    and now - self._published_at < self.refresh_seconds):
                return False
            hosts = {kind: self._redact.redact_value(h.as_json()) for kind, h in health.items()}
            try:
                self.services.model_status.publish(self.name, hosts)
            except Exception as exc:
                log.warning("model health not published: %s", type(exc).__name__)
                return False
            self._published, self._published_at = signature, now
            return True

    # --- stop ----------------------------------------------------------------------------------
    def on_stop_requested(self) -> None:
        """SIGTERM or SIGINT reached the worker (called in Celery's signal handler): Celery stops
        taking tasks and waits for those running; this bounds that wait (module docstring)."""
        self._stop.set()
        with self._stop_lock:
            if self._watchdog is not None:
                return
            self._watchdog = threading.Thread(target=self._bound_stop, name="stop", daemon=True)
            self._watchdog.start()

    def _bound_stop(self) -> None:
        grace = self.services.settings.stop_grace_seconds
        if not self._stopped.wait(grace):
            running = self.services.leases.running()
            if self._begin_stop():  # the steps still run: abandon them
                log.warning("stopping: %d step(s) still running after %.0fs; handing their "
                            "turns back", running, grace)
                # In a thread of its own, bounded: with Redis or the broker gone too (`dev`
                # killed with its embedded Redis), each call would retry for seconds.
                threading.Thread(target=self._hand_back_and_close, name="hand-back",
                                 daemon=True).start()
                if not self._stopped.wait(EXIT_SECONDS):
                    log.warning("the turns were not handed back in %.0fs (Redis away?); the "
                                "reconciler will resume them", EXIT_SECONDS)
                self._exit()
            self._stopped.wait(EXIT_SECONDS)  # on_shutdown is handing the turns back
        # A daemon thread: when the process ends on its own, this ends with it.
        threading.Event().wait(EXIT_SECONDS)
        log.warning("the worker did not exit %.0fs after its turns were handed back; exiting "
                    "now", EXIT_SECONDS)
        self._exit()

    def on_shutdown(self) -> None:
        """Celery stopped its pool (every running step ended): hand the turns back, close."""
        self._stop.set()
        if self._begin_stop():
            self._hand_back_and_close()

    def _begin_stop(self) -> bool:
        with self._stop_lock:
            first, self._stopping = not self._stopping, True
            return first

    def _hand_back_and_close(self) -> None:
        sv = self.services
        try:
            if self.heartbeat is not None:
                # A beat in progress would take a lease back after it was let go (a beat
                # takes milliseconds; Redis hanging, the hand-back fails anyway).
                self.heartbeat.stop(wait=3.0)
            try:
                sv.sandbox.close()  # the decode processes go now (they die with us anyway)
            except Exception:
                log.warning("decode processes not stopped cleanly", exc_info=True)
            handed = sv.leases.hand_back()
            for key in handed:
                try:
                    sv.enqueue(key)
                except Exception as exc:  # the broker is away: a reconciler finds it later
                    log.warning("conversation %s not woken (%s)", key.log_id(),
                                type(exc).__name__)
            if handed:
                log.info("handed %d turn(s) back to the other workers", len(handed))
            try:
                sv.worker_registry.leave(self.name)
                sv.model_status.leave(self.name)
            except Exception:
                pass
        finally:
            self._stopped.set()

    @staticmethod
    def _exit() -> None:
        """End the process now, threads and all (a step's thread cannot be stopped)."""
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)
