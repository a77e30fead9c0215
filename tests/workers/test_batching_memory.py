"""The batcher remembers only its newest batch sizes: a worker that runs for months does not
grow a list by one entry per batch."""

from __future__ import annotations

from workers.engines.base import GenerationRequest, GenerationResult
from workers.engines.batching import RECENT_BATCHES, BatchingEngine


class EchoEngine:
    """Answers each request of a batch at once (the batcher is under test, not a model)."""

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [GenerationResult(text="ok") for _ in requests]


def test_batch_sizes_are_bounded():
    batcher = BatchingEngine(EchoEngine(), max_batch=1, max_wait=0)  # type: ignore[arg-type]
    for _ in range(RECENT_BATCHES + 10):
        assert batcher.generate(None, timeout=10).text == "ok"  # type: ignore[arg-type]
    assert batcher.batches == RECENT_BATCHES + 10
    assert len(batcher.batch_sizes) == RECENT_BATCHES
    assert set(batcher.batch_sizes) == {1}
