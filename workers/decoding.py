"""The second fence around decoders of bytes from outside: a small pool of decode processes,
each under a memory bound (`RLIMIT_AS`) and every decode under a time limit.

The decoders check their own declared budgets before the work (`workers.audio.decode`: the
container, sample rate, channels and output length; `workers.images.prepare_image`: the format
and the pixel count). This fence holds for whatever those checks cannot see, a decoder
library's own allocations or loops: a decode that needs more memory than `memory_bytes` fails
(or dies) in its process, one that runs past `seconds` is killed there, and the worker, its
other threads and the model beside it never notice. The caller gets the decoder's ordinary
error (`NotAudio`, `ImageUnreadable`), so the person gets the ordinary polite notice.

    DecodeSandbox(memory_bytes, seconds, processes)
      .audio(data, max_seconds, mime_type) -> Clip           or an AudioError
      .image(data, max_pixels) -> PreparedImage              or ImageUnreadable
      .run(fn, *args) -> fn(*args), run in a decode process  or fn's own error, or:

    DecodeFenceError (ValueError)
     ├── DecodeTimedOut      over `seconds`: its process is killed, a fresh one replaces it
     ├── DecodeOutOfMemory   over `memory_bytes` (MemoryError in the process)
     └── DecodeCrashed       the process died (a signal, an abort), or the pool could not run

The processes (pebble's `ProcessPool`, which kills and replaces a process whose task times out
or dies) are forked by a forkserver, never from the worker itself (which may hold CUDA and
threads); the forkserver preloads PyAV, Pillow and numpy, so a fresh process costs a fork, not
an import. They are started on first use and reused: a decode costs a round trip through a
pipe (measured by `benchmarks/decode_sandbox.py`). Each process on start: the memory bound
(its address space then, plus `memory_bytes`, soft and hard limit alike), no core files (a
crash would write user data to disk), one decoding thread, and a parent-death signal
(`bot.kernel.processes.die_with_parent`): it is killed when the forkserver exits, which it does
when the worker exits, however it ends (SIGTERM, SIGKILL), so no decode process outlives its
worker. An idle one also exits on its pipe's end-of-file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from bot.kernel.processes import die_with_parent
from workers.audio import AudioError, Clip, NotAudio
from workers.audio import decode as decode_audio
from workers.images import ImageUnreadable, PreparedImage, prepare_image

if TYPE_CHECKING:
    from pebble import ProcessFuture, ProcessPool

    from bot.kernel.settings import Settings

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: What the forkserver imports once, so that each decode process starts as a fork with them.
PRELOAD = ["av", "numpy", "PIL.Image", "pypdfium2", "workers.audio", "workers.images",
           "workers.documents", "workers.decoding"]


class DecodeFenceError(ValueError):
    """A decode stopped by the fence (not by the decoder's own checks)."""


class DecodeTimedOut(DecodeFenceError):
    """The decode ran past its time limit; its process was killed."""


class DecodeOutOfMemory(DecodeFenceError):
    """The decode needed more memory than its process may have."""


class DecodeCrashed(DecodeFenceError):
    """The decode process died, or no decode process could be started."""


def _enter_process(memory_bytes: int) -> None:
    """A decode process's first act: die with the forkserver, then the bounds."""
    # The forkserver lives while any process holds its "alive" pipe, and hands that pipe to
    # each process it forks (for forks of forks): a busy decode process would keep it alive,
    # and so itself (its parent never exits). Decode processes fork nothing: let go of it.
    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(alive, int):
        os.close(alive)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]
    # SIGKILL when the forkserver (so the worker) goes; gone already: exit.
    die_with_parent(signal.SIGKILL, os.getppid())
    try:  # a thread per core would reserve an arena and a stack each, against the bound
        from PIL import AvifImagePlugin

        AvifImagePlugin.DEFAULT_MAX_THREADS = 1
    except ImportError:
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        with open("/proc/self/statm") as statm:  # address space so far (libraries, arenas)
            used = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: no address-space bound there (the time limit still holds)
        return
    resource.setrlimit(resource.RLIMIT_AS, (used + memory_bytes, used + memory_bytes))


def _call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in a decode process. A failure's frames let go of their locals
    (the half-decoded pixels) at once: the process keeps its last result until the next task
    ends, and the next decode needs that memory."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        seen: set[int] = set()
        chained: BaseException | None = exc
        while chained is not None and id(chained) not in seen:
            seen.add(id(chained))
            traceback.clear_frames(chained.__traceback__)
            chained = chained.__cause__ or chained.__context__
        raise


class DecodeSandbox:
    """A pool of `processes` decode processes, each bound to `memory_bytes` more address space
    than it started with and `seconds` per decode; thread-safe, started on first use."""

    def __init__(self, *, memory_bytes: int, seconds: float, processes: int = 2) -> None:
        self.memory_bytes = memory_bytes
        self.seconds = seconds
        self.processes = processes
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeSandbox:
        return cls(memory_bytes=settings.decode_memory_mb * 1024 * 1024,
                   seconds=settings.decode_timeout_seconds,
                   processes=settings.decode_processes)

    # --- the decoders, fenced ------------------------------------------------------------------
    def audio(self, data: bytes, max_seconds: float, mime_type: str | None) -> Clip:
        """`workers.audio.decode` in a decode process; a fenced failure is `NotAudio`."""
        try:
            return self.run(decode_audio, data, max_seconds, mime_type)
        except AudioError:
            raise
        except DecodeFenceError as exc:
            raise NotAudio(f"audio decoding stopped: {exc}") from exc

    def image(self, data: bytes, max_pixels: int) -> PreparedImage:
        """`workers.images.prepare_image` in a decode process; a fenced failure is
        `ImageUnreadable`."""
        try:
            return self.run(prepare_image, data, max_pixels)
        except ImageUnreadable:
            raise
        except DecodeFenceError as exc:
            raise ImageUnreadable(f"image decoding stopped: {exc}") from exc

    # --- the pool ------------------------------------------------------------------------------
    def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a decode process (`fn` and its arguments are pickled).

        `fn`'s own exceptions come back as they are; the fence's are `DecodeFenceError`s.
        """
        from pebble import ProcessExpired

        future = self._schedule(_call, (fn, *args), kwargs)
        try:
            return future.result()
        except FutureTimeout as exc:
            log.warning("decode process killed after %.0f s", self.seconds)
            raise DecodeTimedOut(f"over {self.seconds:g} s") from exc
        except MemoryError as exc:
            log.warning("decode ran out of its %d MiB", self.memory_bytes >> 20)
            raise DecodeOutOfMemory(f"over {self.memory_bytes >> 20} MiB") from exc
        except ProcessExpired as exc:
            log.warning("decode process died (exit code %s)", exc.exitcode)
            raise DecodeCrashed(f"the decode process died ({exc.exitcode})") from exc
        except BrokenProcessPool as exc:
            self._discard()
            raise DecodeCrashed("the decode processes could not run") from exc

    def _schedule(self, fn: Callable[..., T], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> ProcessFuture[T]:
        try:
            return self._started().schedule(fn, args=args, kwargs=kwargs, timeout=self.seconds)
        except RuntimeError:  # the pool stopped itself (a management thread died): anew, once
            self._discard()
        try:
            return self._started().schedule(fn, args=args, kwargs=kwargs, timeout=self.seconds)
        except RuntimeError as exc:
            raise DecodeCrashed("no decode process could be started") from exc

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                from pebble import ProcessPool

                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
                self._pool = ProcessPool(max_workers=self.processes, context=context,
                                         initializer=_enter_process,
                                         initargs=(self.memory_bytes,))
            return self._pool

    def _discard(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def close(self) -> None:
        """Stop the decode processes (a later call starts new ones)."""
        self._discard()


_shared: dict[tuple[int, float, int], DecodeSandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox(settings: Settings) -> DecodeSandbox:
    """The process's sandbox for these settings' limits, built once (its processes start on
    first use): what a turn service decodes with unless it is given one."""
    made = DecodeSandbox.from_settings(settings)
    key = (made.memory_bytes, made.seconds, made.processes)
    with _shared_lock:
        return _shared.setdefault(key, made)
