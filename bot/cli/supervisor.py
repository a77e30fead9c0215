"""`sealion-bot dev`'s worker supervisor: the worker process is started again whenever it dies.

A worker that exits (an out-of-memory kill, a crash) comes back after a short pause, doubled on
each quick death up to `max_backoff` seconds and reset once it has run for a minute; turns it
held are resumed by the reconciler once it is back. Stopping sends SIGTERM (a warm shutdown:
the worker hands its turns back), then SIGKILL after `grace` seconds; `begin_stop` sends the
SIGTERM without waiting, so that `dev` stops its API meanwhile. The worker also gets SIGTERM
when `dev` dies without stopping it (a parent-death signal: `bot.kernel.processes`).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence

from bot.kernel.processes import terminate, with_parent

log = logging.getLogger(__name__)

#: A worker that ran this long before dying starts again at once.
STABLE_SECONDS = 60.0


class WorkerSupervisor:
    def __init__(self, argv: Sequence[str], env: dict[str, str], *, max_backoff: float = 30.0,
                 grace: float = 30.0) -> None:
        self.argv, self.env = list(argv), env
        self.max_backoff, self.grace = max_backoff, grace
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._signalled: subprocess.Popen[bytes] | None = None  # SIGTERM sent (begin_stop)

    def start(self) -> WorkerSupervisor:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor",
                                        daemon=True)
        self._thread.start()
        return self

    def _spawn(self) -> None:
        with self._lock:
            if not self._stop.is_set():
                # Its own session: a Ctrl-C in the terminal reaches `dev` only, which stops the
                # worker itself (otherwise the worker would die first and be started again).
                # Spawned by `start`'s thread, then by the watching thread, which both live
                # until `stop`: the parent-death signal fires when the spawning thread ends.
                self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True,
                                                preexec_fn=with_parent())

    def _watch(self) -> None:
        backoff = 1.0
        started = time.monotonic()
        while not self._stop.wait(0.5):
            process = self.process
            if process is None or process.poll() is None:
                continue
            if time.monotonic() - started > STABLE_SECONDS:
                backoff = 1.0
            log.warning("worker exited with status %s; starting it again in %.0fs",
                        process.returncode, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)
            self.restarts += 1
            started = time.monotonic()
            self._spawn()

    def begin_stop(self) -> None:
        """No more restarts; SIGTERM to the worker now (a warm shutdown). Signal-safe."""
        self._stop.set()
        process = self.process
        if process is not None and process.poll() is None:
            try:
                process.terminate()
                self._signalled = process
            except OSError:
                pass

    def stop(self) -> None:
        """Stop the worker: SIGTERM, `grace` seconds, SIGKILL; reaped."""
        with self._lock:
            self._stop.set()
            process = self.process
        if process is not None:
            terminate(process, self.grace, sent=process is self._signalled)
