"""The batchers remember only their newest batch sizes: a worker that runs for months does not
grow a list by one entry per batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workers.asr.base import BaseRecogniser, Transcript
from workers.asr.batching import BatchingRecogniser
from workers.audio import Clip
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


class SilenceRecogniser(BaseRecogniser):
    """Hears nothing in every clip at once (the batcher is under test, not a model)."""

    name = "silence"

    def load(self) -> None:
        pass

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        return [Transcript(text="") for _ in clips]


def test_asr_batch_sizes_are_bounded():
    batcher = BatchingRecogniser(SilenceRecogniser(), max_batch=1, max_wait=0)
    clip = Clip(np.zeros(160, dtype=np.float32))
    for _ in range(RECENT_BATCHES + 10):
        assert batcher.transcribe(clip).text == ""
    assert len(batcher.batch_sizes) == RECENT_BATCHES
