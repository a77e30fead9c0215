"""Turn leases kept alive by every worker process, and the reconciler that runs in each of them.

    LeaseKeeper   the turns this process works on; `beat()` renews their leases. The I/O worker
                  that took a turn *owns* it until the turn ends (it vouches for it while the
                  job waits in a queue and while the GPU generates); a step holds it while it
                  runs; the GPU worker also keeps a generation lease, so that an owner stops
                  vouching for a turn whose GPU worker died mid-generation. `hand_back()`
                  gives them all up when the worker stops (`workers.lifecycle`): another
                  worker resumes them at once.
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

from bot.kernel.messages import ConversationKey
from storage.conversations import ConversationStore

log = logging.getLogger(__name__)


@dataclass
class _Held:
    key: ConversationKey
    lease: str
    owner: bool
    since: float
    holders: int = 0
    #: `LeaseKeeper`'s failover count when this process took the turn up.
    epoch: int = 0
    #: Step locks renewed with the lease (a generation, a delivery).
    extras: tuple[str, ...] = ()


class LeaseKeeper:
    """The leases one process renews; thread-safe."""

    def __init__(self, store: ConversationStore, *, max_hold_seconds: float,
                 master: Callable[[], object] | None = None) -> None:
        self._store = store
        self._max_hold = max_hold_seconds
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        #: The Redis master this process reaches now (a Sentinel client's, no command sent;
        #: None with REDIS_URL): when it changes, Redis failed over (`watch_master`).
        self._master = master
        self._seen_master: object = None
        self._failovers = 0

    def own(self, key: ConversationKey, lease: str) -> None:
        """Vouch for a turn this process took, until it ends (or `max_hold_seconds`)."""
        with self._lock:
            entry = self._held.setdefault(
                lease, _Held(key, lease, True, time.monotonic(), epoch=self._failovers))
            entry.owner = True

    @contextlib.contextmanager
    def holding(self, key: ConversationKey, lease: str, *,
                also: tuple[str, ...] = ()) -> Iterator[None]:
        """Keep the lease (and the step locks `also`) alive while a step works on the turn."""
        with self._lock:
            entry = self._held.setdefault(
                lease, _Held(key, lease, False, time.monotonic(), epoch=self._failovers))
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

    def running(self) -> int:
        """How many steps work on a turn in this process now."""
        with self._lock:
            return sum(entry.holders > 0 for entry in self._held.values())

    def hand_back(self) -> list[ConversationKey]:
        """Give up every turn this process holds or vouches for (its worker stops): the step
        locks of steps still running are released (those steps are abandoned: the process
        exits next), each lease is let go (`ConversationStore.hand_back`) and forgotten.
        Returns the conversations let go, for the caller to wake: their turn is resumed by the
        next worker that looks, from what it recorded. Stop the heartbeat first (a beat would
        take a lease back); a Redis error leaves that lease to lapse, as a crash would."""
        with self._lock:
            entries = list(self._held.values())
            self._held.clear()
        handed: list[ConversationKey] = []
        for entry in entries:
            try:
                for name in entry.extras:
                    self._store.unlock(name)
                if self._store.hand_back(entry.key, entry.lease) and entry.key not in handed:
                    handed.append(entry.key)
            except Exception as exc:
                log.warning("turn %s not handed back (%s): its lease lapses", entry.lease,
                            type(exc).__name__)
        return handed

    def watch_master(self) -> None:
        """Compare the master with the one seen last (each heartbeat, and before a held turn
        sends): a change is a failover (`failover_seen`)."""
        if self._master is None:
            return
        now = self._master()
        if now is None:  # not connected right now
            return
        with self._lock:
            changed = self._seen_master is not None and now != self._seen_master
            self._seen_master = now
        if changed:
            self.failover_seen()

    def failed_over_since(self, lease: str) -> bool:
        """Whether Redis failed over since this process took up the turn (or forgot it): its
        start may be lost with the old master, so it must claim the turn before acting outside
        Redis. False without Sentinel."""
        if self._master is None:
            return False
        self.watch_master()
        with self._lock:
            entry = self._held.get(lease)
            return entry is None or entry.epoch != self._failovers

    def failover_seen(self) -> int:
        """Redis failed over (REDIS_SENTINELS; storage.connection.master_address changed):
        stop vouching for the turns this process owns but runs no step of. Their job on
        another queue may have been lost with the old master, and vouching would hold the
        turn until TURN_TIMEOUT_SECONDS; let go, the lease lapses within LEASE_SECONDS and the
        reconciler resumes the turn from what the new master holds (a job that did survive
        finds its turn taken over and drops out). Returns how many were let go."""
        with self._lock:
            self._failovers += 1
            idle = [lease for lease, entry in self._held.items()
                    if entry.owner and entry.holders <= 0]
            for lease in idle:
                self._held.pop(lease, None)
        if idle:
            log.warning("Redis failed over: %d turn(s) waiting on another queue left to the "
                        "reconciler", len(idle))
        return len(idle)

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

    def stop(self, wait: float = 0.0) -> None:
        """Stop beating; wait up to `wait` seconds for a beat in progress to end."""
        self._stop.set()
        if wait > 0 and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def _run(self) -> None:
        next_sweep = time.monotonic() + min(self._sweep, 2.0)
        while not self._stop.is_set():
            self._keeper.watch_master()
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

