"""The one batcher of every in-process model: many waiting threads, one batch at a time.

Celery's threads pool runs many tasks at once in one process; each asks a model for one
answer (`Batcher.submit`: its item goes on a queue, and it waits on its own future). One
batcher thread takes the first waiting item, gathers those that join it within `max_wait`
seconds (at most `max_batch`: `take_batch`), and hands them to the model's batch function
together. So requests that arrive while the accelerator is busy join the next batch. The chat
model, the guard model (a chat model of its own) and Whisper all batch here.

    prepare(item)   optional, run in the submitting thread before the item is queued: the CPU
                    work of a request (image decoding), outside the model's lock, never on the
                    batcher's thread. What it raises goes to the caller.
    run(items)      the model's batch function: one result per item, in order. What it raises
                    reaches every caller waiting in that batch (none hangs); a host that
                    answers every request (the chat model's error results) catches it first.

`stats()` is cheap (the host's health shows it): batches so far, the newest batch sizes (at
most `RECENT_BATCHES` kept, so a worker that runs for months does not grow a list), and how
many items wait now.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")

#: How many batch sizes `Batcher.batch_sizes` keeps.
RECENT_BATCHES = 1024


def take_batch(waiting: queue.Queue[T], max_batch: int, max_wait: float) -> list[T]:
    """The first waiting item (blocking), and those that join it within `max_wait` seconds,
    `max_batch` at most."""
    batch = [waiting.get()]
    deadline = time.monotonic() + max_wait
    while len(batch) < max_batch:
        remaining = deadline - time.monotonic()
        try:
            batch.append(waiting.get(timeout=remaining) if remaining > 0
                         else waiting.get_nowait())
        except queue.Empty:
            break
    return batch


class Batcher(Generic[Item, Result]):
    """Batches of `run` for many threads; its thread starts on the first `submit`."""

    def __init__(self, run: Callable[[Sequence[Any]], Sequence[Result]], *,
                 prepare: Callable[[Item], Any] | None = None, max_batch: int = 16,
                 max_wait: float = 0.005, name: str = "batcher") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._run_batch = run
        self._prepare = prepare
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.name = name
        self._queue: queue.Queue[tuple[Any, Future[Result]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Sizes of the newest batches (for health, tests and benchmarks).
        self.batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)
        #: How many batches were run in all.
        self.batches = 0

    def submit(self, item: Item) -> Future[Result]:
        """Queue `item` (prepared first, in this thread); its future gets its result."""
        prepared = item if self._prepare is None else self._prepare(item)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name,
                                                daemon=True)
                self._thread.start()
        future: Future[Result] = Future()
        self._queue.put((prepared, future))
        return future

    def stats(self) -> dict[str, Any]:
        recent = list(self.batch_sizes)
        return {"batches": self.batches, "waiting": self._queue.qsize(),
                "max_batch": self.max_batch,
                "recent_batch_mean": round(sum(recent) / len(recent), 2) if recent else 0.0,
                "recent_batch_max": max(recent, default=0)}

    def _serve(self) -> None:
        while True:
            batch = take_batch(self._queue, self.max_batch, self.max_wait)
            self.batch_sizes.append(len(batch))
            self.batches += 1
            try:
                results = self._run_batch([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            except Exception as exc:  # every waiting caller gets the failure, none hangs
                # (A model that failed to load fails every batch: no traceback each time.)
                log.warning("%s: a batch of %d failed: %s: %s", self.name, len(batch),
                            type(exc).__name__, exc)
                log.debug("batch failure", exc_info=True)
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
