"""Batching in front of an engine: many waiting tasks, one generate() per batch.

Celery's threads pool runs many inference tasks at once in one process; each calls `submit`,
which puts its request on a queue and waits for its own result. One batcher thread takes the
first waiting request, gathers more for at most `max_wait` seconds (or until `max_batch`), and
generates them together. So requests that arrive while the GPU is busy join the next batch.
An engine with `decode` (the transformers engine) has each request's CPU preparation, image
decoding above all, done in the submitting thread, outside the engine's lock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, TypeVar

from workers.engines.base import BaseEngine, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How many batch sizes `BatchingEngine.batch_sizes` keeps.
RECENT_BATCHES = 1024


def take_batch(waiting: queue.Queue[T], max_batch: int, max_wait: float) -> list[T]:
    """The first waiting item (blocking), and those that join it within `max_wait` seconds,
    `max_batch` at most (the speech recogniser's batcher gathers the same way)."""
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


class BatchingEngine:
    def __init__(self, engine: BaseEngine, *, max_batch: int = 16, max_wait: float = 0.005):
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait
        #: Requests (or what the engine's `decode` made of them) with their futures.
        self._queue: queue.Queue[tuple[Any, Future[GenerationResult]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Sizes of the newest batches (for tests and benchmarks), at most RECENT_BATCHES.
        self.batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)
        #: How many batches were generated in all.
        self.batches = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
                self._thread.start()

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        self.start()
        future: Future[GenerationResult] = Future()
        item: Any = request
        decode = getattr(self.engine, "decode", None)
        if decode is not None:
            # CPU preparation (image decoding) in the caller's thread, never the GPU's.
            try:
                item = decode(request)
            except Exception as exc:
                item = exc
        self._queue.put((item, future))
        return future

    def generate(self, request: GenerationRequest, timeout: float | None = None) -> GenerationResult:
        return self.submit(request).result(timeout)

    def _run(self) -> None:
        while True:
            batch = take_batch(self._queue, self.max_batch, self.max_wait)
            self.batch_sizes.append(len(batch))
            self.batches += 1
            try:
                decoded = getattr(self.engine, "generate_decoded", None)
                items = [item for item, _ in batch]
                results = (decoded(items) if decoded is not None
                           else self.engine.generate_batch(items))
            except Exception as exc:  # the engine as a whole failed: answer every request
                log.exception("engine failed on a batch of %d", len(batch))
                results = [GenerationResult(text="", error=f"{type(exc).__name__}: {exc}")
                           for _ in batch]
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
