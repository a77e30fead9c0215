"""Speech recognition: a voice note's 16 kHz samples in, its text and language out.

`create_recogniser(settings)` builds the backend ASR_BACKEND names (see `Settings.
effective_asr_backend`): Whisper in process behind a batcher, or an OpenAI-compatible server.
Nothing is loaded until `load()` or the first transcription.
"""

from __future__ import annotations

from bot.settings import Settings
from workers.asr.base import BaseRecogniser, RecogniserUnavailable


def create_recogniser(settings: Settings) -> BaseRecogniser:
    backend = settings.effective_asr_backend
    if backend == "openai":
        from workers.asr.openai import OpenAIRecogniser

        assert settings.asr_base_url
        key = settings.asr_api_key.get_secret_value() if settings.asr_api_key else None
        return OpenAIRecogniser(settings.asr_base_url, settings.asr_model or settings.asr_model_id,
                                key, timeout=settings.asr_timeout_seconds)
    if backend == "transformers":
        from workers.asr.batching import BatchingRecogniser
        from workers.asr.transformers import TransformersRecogniser

        whisper = TransformersRecogniser(settings.asr_model_id, device=settings.engine_device,
                                         batch_size=settings.engine_max_batch_size)
        return BatchingRecogniser(whisper, max_batch=settings.engine_max_batch_size,
                                  max_wait=settings.engine_max_wait_ms / 1000)
    raise RecogniserUnavailable("speech recognition is off (ASR_BACKEND=off)")
