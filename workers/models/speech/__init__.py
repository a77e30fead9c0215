"""The speech model: a voice note's 16 kHz samples in, its text and language out.

The contract is `workers.models.speech.base` (`BaseRecogniser`, `Transcript`, the errors); its
hosts are Whisper in process (`transformers`) and an OpenAI-compatible transcription server
(`openai`). The composition root builds the one ASR_BACKEND names (`bot.composition`).
"""

from workers.models.speech.base import (
    BaseRecogniser,
    RecogniserError,
    RecogniserUnavailable,
    Transcript,
)

__all__ = ["BaseRecogniser", "RecogniserError", "RecogniserUnavailable", "Transcript"]
