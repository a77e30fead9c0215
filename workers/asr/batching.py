"""Batching in front of an in-process recogniser: many waiting tasks, one batch on the GPU.

As `workers.engines.batching` does for generation: each of the worker's threads calls
`transcribe`, which queues its clip and waits; one thread takes the first clip, gathers more
for at most `max_wait` seconds (or until `max_batch`), and transcribes them together.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future

from workers.asr.base import BaseRecogniser, RecogniserError, Transcript
from workers.audio import Clip
from workers.engines.batching import RECENT_BATCHES, take_batch

log = logging.getLogger(__name__)


class BatchingRecogniser(BaseRecogniser):
    def __init__(self, recogniser: BaseRecogniser, *, max_batch: int = 8,
                 max_wait: float = 0.005) -> None:
        self.recogniser = recogniser
        self.name = recogniser.name
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[tuple[Clip, Future[Transcript]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Sizes of the newest batches (for tests), at most RECENT_BATCHES: a worker that runs
        #: for months does not grow a list by one entry a batch.
        self.batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)

    def load(self) -> None:
        self.recogniser.load()

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        futures = [self.submit(clip) for clip in clips]
        return [future.result() for future in futures]

    def transcribe(self, clip: Clip) -> Transcript:
        return self.submit(clip).result()

    def submit(self, clip: Clip) -> Future[Transcript]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="asr-batcher",
                                                daemon=True)
                self._thread.start()
        future: Future[Transcript] = Future()
        self._queue.put((clip, future))
        return future

    def _run(self) -> None:
        while True:
            batch = take_batch(self._queue, self.max_batch, self.max_wait)
            self.batch_sizes.append(len(batch))
            try:
                results = self.recogniser.transcribe_batch([clip for clip, _ in batch])
            except Exception as exc:  # every waiting task gets the failure, none hangs
                log.exception("recogniser failed on a batch of %d", len(batch))
                error = exc if isinstance(exc, RecogniserError) else RecogniserError(
                    f"{type(exc).__name__}: {exc}")
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
