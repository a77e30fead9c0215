"""Speech recognition through an OpenAI-compatible `/v1/audio/transcriptions` endpoint.

vLLM serving Whisper (`vllm serve openai/whisper-large-v3-turbo`), `transformers serve`, and
OpenAI itself take a multipart upload (`file`, `model`, `response_format`) and answer JSON with
`text` (and, as `verbose_json`, the `language` heard). The clip goes up as 16 kHz mono WAV, the
one format every such server reads. The server batches concurrent uploads itself, so each of the
worker's threads calls it directly. A server that refuses `verbose_json` is asked for `json`
from then on (no language hint then). The connection and its errors are every server host's
(`workers.models.openai_api`): `load()` checks that the server lists the model, a clip that gets
no answer at all makes the host unavailable, and the next answer makes it ready again.

This module imports neither torch nor transformers: a worker using it needs neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from workers.audio import Clip, to_wav
from workers.models.openai_api import OpenAIServer, ServerError, ServerUnreachable
from workers.models.speech.base import (
    BaseRecogniser,
    RecogniserError,
    RecogniserUnavailable,
    Transcript,
    our_language,
)

log = logging.getLogger(__name__)

#: Answers larger than this are not a transcript of a few minutes of speech.
MAX_ANSWER_BYTES = 1024 * 1024


class OpenAIRecogniser(BaseRecogniser):
    name = "openai"
    remote: ClassVar[bool] = True

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 timeout: float = 120.0, concurrency: int = 16) -> None:
        # A clip that got no answer at all is sent once more; an error status is final.
        self.server = OpenAIServer(base_url, api_key, setting="ASR_BASE_URL",
                                   label="transcription server", key_setting="ASR_API_KEY",
                                   timeout=timeout, max_retries=1, backoff=0.2,
                                   connections=concurrency)
        self.url = f"{self.server.base_url}/audio/transcriptions"
        self.model = model
        self._format = "verbose_json"

    def _load(self) -> None:
        """Check that the server answers and lists the model."""
        try:
            self.server.require_model(self.model)
        except ServerError as exc:
            raise RecogniserUnavailable(str(exc)) from exc

    def close(self) -> None:
        self.server.close()

    def details(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.server.base_url,
                "response_format": self._format}

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        return [self.transcribe(clip) for clip in clips]

    def transcribe(self, clip: Clip) -> Transcript:
        started = time.perf_counter()
        wav = to_wav(clip)
        response = self._post(wav, self._format)
        if response.status_code in (400, 422) and self._format == "verbose_json":
            log.info("the transcription server refused verbose_json; asking for json")
            self._format = "json"
            response = self._post(wav, self._format)
        if response.status_code in (401, 403, 404):
            refused = RecogniserUnavailable(
                f"transcription server refused: HTTP {response.status_code}")
            self._lost(refused)  # no clip will pass until the server or the settings change
            raise refused
        if response.status_code != 200:
            raise RecogniserError(f"transcription server answered HTTP {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise RecogniserError("transcription answer too large")
        try:
            body = response.json()
            text = str(body["text"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecogniserError(f"unreadable transcription answer: {exc}") from exc
        self._answered()
        return Transcript(text=text.strip(), language=our_language(body.get("language")),
                          seconds=time.perf_counter() - started)

    def _post(self, wav: bytes, response_format: str) -> httpx.Response:
        try:
            response = self.server.send(
                "POST", "/audio/transcriptions",
                files={"file": ("voice.wav", wav, "audio/wav")},
                data={"model": self.model, "response_format": response_format})
        except ServerUnreachable as exc:
            self._lost(exc)
            raise RecogniserUnavailable(str(exc)) from exc
        except ServerError as exc:
            raise RecogniserError(str(exc)) from exc
        return response
