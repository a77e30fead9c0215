"""Processes that a process starts die with it, and stop in bounded time.

    die_with_parent(sig, parent)   in a child: `sig` is sent to it when its parent dies
    with_parent() -> preexec_fn    the same, for `subprocess.Popen(preexec_fn=...)`
    watch_parent(parent, bound)    a thread that stops this process when `parent` is gone, and
                                   ends it `bound` seconds later if it is still running
    terminate(process, grace)      SIGTERM, `grace` seconds to exit, then SIGKILL; reaped
    stop_on_signals()              SIGTERM as Ctrl-C: KeyboardInterrupt, once

The parent-death signal (Linux `prctl(PR_SET_PDEATHSIG)`) is what keeps a child from outliving
a parent that was SIGKILLed (an out-of-memory kill, `kill -9`, a container runtime): the kernel
sends the child `sig` when its parent goes, however it goes. Every process the project starts
sets it: `dev`'s and `chat`'s worker and embedded redis-server, the decode processes
(`workers.decoding`), celery beat inside a worker, the processes of `api --workers N`.

Two rules of the kernel shape how it is used:
- it fires when the *thread* that forked the child ends, not only the process: start children
  from the main thread or from a thread that lives as long as they should;
- a parent that died between the fork and the `prctl` leaves the child with nothing to wait
  for: so the child compares its parent's pid with the one it was forked from, and exits if
  they differ.

The signal is sent once: a process that received it while it could not act on it, or whose
stop then waited on a Redis that died with the parent, would outlive it. So the children that
must go with their parent (`dev`'s and `chat`'s worker) also watch it (`watch_parent`): when their
parent's pid is no longer their parent's, they signal themselves, and if that stop has not ended
them `bound` seconds later they exit.

Elsewhere than Linux there is no such signal: there the children are stopped by their parent's
ordinary stop only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """Ask the kernel to send this process `sig` when its parent dies; exit at once when the
    parent (pid `parent`, when given) is already gone. A no-op elsewhere than Linux.

    Safe between fork and exec (`preexec_fn`): no allocation beyond ctypes' call, no lock."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return  # no such call here (a sandbox that forbids it): the ordinary stop remains
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent went before prctl took effect: nobody would stop us


def with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when the calling thread's
    process dies (see the module docstring on threads)."""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent(sig, parent)

    return preexec


def watch_parent(parent: int, bound: float, *, interval: float = 0.5,
                 getppid: Callable[[], int] = os.getppid,
                 stop: Callable[[], None] | None = None,
                 end: Callable[[int], None] = os._exit,
                 sleep: Callable[[float], Any] | None = None) -> threading.Thread:
    """Start a daemon thread that, once this process's parent is no longer `parent` (it died:
    the process was re-parented), calls `stop` (default: SIGTERM to this process, its ordinary
    stop) and, `bound` seconds after, `end(1)` (default `os._exit`) if the process still runs.
    The keyword arguments other than `interval` exist for tests."""
    stop = stop or (lambda: os.kill(os.getpid(), signal.SIGTERM))
    wait = sleep or threading.Event().wait

    def watch() -> None:
        while getppid() == parent:
            wait(interval)
        stop()
        wait(bound)
        end(1)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def terminate(process: subprocess.Popen[Any], grace: float, *, sent: bool = False) -> int | None:
    """SIGTERM (unless `sent` already), up to `grace` seconds to exit, then SIGKILL; reaped
    either way. Returns the exit status (None if even SIGKILL was not reaped within 10 s)."""
    if process.poll() is None:
        try:
            if not sent:
                process.send_signal(signal.SIGTERM)
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
        try:
            return process.wait(10)
        except subprocess.TimeoutExpired:
            return None
    return process.returncode


def stop_on_signals() -> None:
    """From now on SIGTERM, like SIGINT (Ctrl-C), raises KeyboardInterrupt in the main thread,
    so that the `finally` blocks that stop this process's children run; and once one came, both
    are ignored, so that a second one does not cut that stop short (the children are bounded
    by their own grace; SIGKILL still ends everything, children included).

    Python's default for SIGTERM ends the process at once, `finally` blocks and all; uvicorn,
    once it has shut down on a signal, raises it again with the handler that was there before
    it: this one."""
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
