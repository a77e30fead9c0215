"""Whisper in process, through transformers' automatic-speech-recognition pipeline.

Clips longer than 30 seconds are cut into overlapping 30-second windows (`chunk_length_s`),
and the windows of every clip in a batch go through the model together (`batch_size`). The
language is detected once per clip from its first window (`detect_language`: the encoder and
one decoder step); clips are then transcribed in groups of one language, with that language
forced, so that a long clip does not switch language between windows. The pipeline's own
`return_language` cannot serve here: it reports one language for a whole batch.

The clips of all the worker's threads (`transcribe`, `transcribe_batch`) meet in the one batcher
(`workers.models.batching.Batcher`), at most `max_batch` clips a batch.

torch and transformers are imported in `load()`, never at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from workers.audio import SAMPLE_RATE, Clip
from workers.models.batching import Batcher
from workers.models.host import missing_checkpoint, quiet_transformers
from workers.models.speech.base import (
    BaseRecogniser,
    RecogniserError,
    RecogniserUnavailable,
    Transcript,
    our_language,
)

log = logging.getLogger(__name__)

CHUNK_SECONDS = 30


class TransformersRecogniser(BaseRecogniser):
    name = "transformers"

    def __init__(self, model_id: str, *, device: str | None = None, batch_size: int = 8,
                 max_batch: int = 8, max_wait: float = 0.005) -> None:
        """Record settings only. `batch_size` windows go through the model at a time;
        `max_batch` clips at most are transcribed together, those that arrive within
        `max_wait` seconds of the first."""
        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        self._pipe: Any = None
        self._lock = threading.Lock()
        self.batcher: Batcher[Clip, Transcript] = Batcher(
            self._transcribe, max_batch=max_batch, max_wait=max_wait, name="speech-batcher")

    def _load(self) -> None:
        if (missing := missing_checkpoint(self.model_id)) is not None:
            raise RecogniserUnavailable(f"speech model {self.model_id} failed to load: {missing}")
        try:
            import torch
            from transformers import pipeline

            quiet_transformers()
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            self._pipe = pipeline("automatic-speech-recognition", model=self.model_id,
                                  device=device, dtype=dtype, ignore_warning=True)
        except Exception as exc:
            raise RecogniserUnavailable(
                f"speech model {self.model_id} failed to load: {exc}") from exc
        self.device = str(self._pipe.device)
        log.info("speech model %s ready on %s", self.model_id, device)

    def submit(self, clip: Clip) -> Future[Transcript]:
        """The clip's transcript, with those of the other threads' clips (the batcher)."""
        return self.batcher.submit(clip)

    def transcribe(self, clip: Clip) -> Transcript:
        return self.submit(clip).result()

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """The clips' transcripts; they join the batches of the other threads' clips."""
        futures = [self.submit(clip) for clip in clips]
        return [future.result() for future in futures]

    def details(self) -> dict[str, Any]:
        return {"model": self.model_id, "device": self.device, **self.batcher.stats()}

    def _transcribe(self, clips: Sequence[Clip]) -> list[Transcript]:
        """The batcher's batch: the clips transcribed together, now; `RecogniserError` when
        the batch failed (every caller in it gets the error)."""
        self.load()
        started = time.perf_counter()
        with self._lock:
            try:
                detected = self._detect(clips)
                texts: dict[int, str] = {}
                for language in dict.fromkeys(detected):
                    group = [i for i, code in enumerate(detected) if code == language]
                    kwargs: dict[str, Any] = {}
                    if language is not None:
                        kwargs["generate_kwargs"] = {"language": language, "task": "transcribe"}
                    outputs = self._pipe(
                        [{"raw": clips[i].samples, "sampling_rate": SAMPLE_RATE} for i in group],
                        chunk_length_s=CHUNK_SECONDS, batch_size=self.batch_size, **kwargs)
                    for i, output in zip(group, outputs, strict=True):
                        texts[i] = str(output.get("text") or "").strip()
            except RecogniserError:
                raise
            except Exception as exc:
                raise RecogniserError(f"{type(exc).__name__}: {exc}") from exc
        seconds = time.perf_counter() - started
        return [Transcript(text=texts[i], language=our_language(detected[i]), seconds=seconds,
                           batch_size=len(clips)) for i in range(len(clips))]

    def _detect(self, clips: Sequence[Clip]) -> list[str | None]:
        """Whisper's language code for each clip ("th", "yue"), from its first window."""
        import torch

        model = self._pipe.model
        config = model.generation_config
        lang_to_id = getattr(config, "lang_to_id", None)
        if not getattr(config, "is_multilingual", False) or not lang_to_id:
            return [None] * len(clips)  # an English-only checkpoint
        extractor = self._pipe.feature_extractor
        first = [clip.samples[: CHUNK_SECONDS * SAMPLE_RATE] for clip in clips]
        features = extractor(first, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        features = features.to(model.device, dtype=model.dtype)
        with torch.inference_mode():
            ids = model.detect_language(input_features=features).reshape(-1).tolist()
        names = {token_id: token for token, token_id in lang_to_id.items()}
        return [names.get(i, "").strip("<|>") or None for i in ids]
