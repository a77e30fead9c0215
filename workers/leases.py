"""Turn leases kept alive by every worker process, and the reconciler that runs in each of them.

    LeaseKeeper   the turns this process works on; `beat()` renews their leases. The I/O worker
                  that took a turn *owns* it until the turn ends (it vouches for it while the
                  job waits in a queue and while the GPU generates); a step holds it while it
                  runs; the GPU worker also keeps a generation lease, so that an owner stops
                  vouching for a turn whose GPU worker died mid-generation.
    Reconciler    `sweep()` looks at active conversations untouched for a grace period: waiting
                  or inflight messages and no live lease mean their worker died, or their task
                  was never published or was lost: it asks an I/O worker to start them again.
    Heartbeat     one daemon thread per worker process running both, so recovery never
                  depends on one scheduler that may itself be down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.messages import ConversationKey
from storage.conversations import ConversationStore

log = logging.getLogger(__name__)


@dataclass
class _Held:
    key: ConversationKey
    lease: str
    owner: bool
    since: float
    holders: int = 0
    #: Step locks renewed with the lease (a generation, a delivery).
    extras: tuple[str, ...] = ()


class LeaseKeeper:
    """The leases one process renews; thread-safe."""

    def __init__(self, store: ConversationStore, *, max_hold_seconds: float) -> None:
        self._store = store
        self._max_hold = max_hold_seconds
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def own(self, key: ConversationKey, lease: str) -> None:
        """Vouch for a turn this process took, until it ends (or `max_hold_seconds`)."""
        with self._lock:
            entry = self._held.setdefault(lease, _Held(key, lease, True, time.monotonic()))
            entry.owner = True

    @contextlib.contextmanager
    def holding(self, key: ConversationKey, lease: str, *,
                also: tuple[str, ...] = ()) -> Iterator[None]:
        """Keep the lease (and the step locks `also`) alive while a step works on the turn."""
        with self._lock:
            entry = self._held.setdefault(lease, _Held(key, lease, False, time.monotonic()))
            entry.holders += 1
            entry.extras = (*entry.extras, *also)
        try:
            yield
        finally:
            with self._lock:
                entry.holders -= 1
                entry.extras = tuple(x for x in entry.extras if x not in also)
                if entry.holders <= 0 and not entry.owner:
                    self._held.pop(lease, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def beat(self) -> None:
        """Renew every lease held here; forget those whose turn ended or was taken over."""
        with self._lock:
            entries = list(self._held.values())
        now = time.monotonic()
        for entry in entries:
            try:
                for name in entry.extras:
                    self._store.keep_alive(name)
                if entry.holders > 0:
                    kept = self._store.renew(entry.key, entry.lease)
                elif now - entry.since > self._max_hold:
                    log.warning("turn %s held for over %.0fs; letting its lease lapse",
                                entry.lease, self._max_hold)
                    kept = 0
                else:
                    kept = self._store.renew(entry.key, entry.lease, watch_generation=True)
            except Exception as exc:  # Redis away: try again at the next beat
                log.warning("lease renewal failed: %s", exc)
                continue
            if kept == -1:
                log.warning("turn %s: its generation stopped without an outcome; letting it be "
                            "resumed", entry.lease)
            if kept <= 0:
                with self._lock:
                    current = self._held.get(entry.lease)
                    if current is not None and current.holders <= 0:
                        self._held.pop(entry.lease, None)
                    elif current is not None:
                        current.owner = False


class Reconciler:
    """Finds conversations with work and no live lease, and restarts them."""

    def __init__(self, store: ConversationStore, restart: Callable[[ConversationKey], None], *,
                 grace_seconds: float) -> None:
        self._store = store
        self._restart = restart
        self._grace = grace_seconds

    def sweep(self) -> int:
        """One pass; returns how many conversations were restarted."""
        restarted = 0
        for key in self._store.active_since(time.time() - self._grace):
            if self._store.reconcile_check(key) == "orphan":
                log.info("conversation %s has work and no live lease: restarting it",
                         key.log_id(), extra={"conversation": key.log_id()})
                self._restart(key)
                restarted += 1
        return restarted


class Heartbeat:
    """The daemon thread of a worker process: leases every `beat_seconds`, a reconciler sweep
    every `sweep_seconds`, and `on_beat` (the worker registry) each time."""

    def __init__(self, keeper: LeaseKeeper, reconciler: Reconciler | None, *,
                 beat_seconds: float, sweep_seconds: float,
                 on_beat: Callable[[], None] | None = None) -> None:
        self._keeper, self._reconciler = keeper, reconciler
        self._beat, self._sweep = beat_seconds, sweep_seconds
        self._on_beat = on_beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        next_sweep = time.monotonic() + min(self._sweep, 2.0)
        while not self._stop.is_set():
            self._keeper.beat()
            if self._on_beat is not None:
                try:
                    self._on_beat()
                except Exception as exc:
                    log.warning("heartbeat failed: %s", exc)
            if self._reconciler is not None and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self._sweep
                try:
                    self._reconciler.sweep()
                except Exception as exc:  # Redis or the broker away: the next sweep retries
                    log.warning("reconciler sweep failed: %s", exc)
            self._stop.wait(self._beat)
