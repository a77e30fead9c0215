"""Speech recognition through an OpenAI-compatible `/v1/audio/transcriptions` endpoint.

vLLM serving Whisper (`vllm serve openai/whisper-large-v3-turbo`), `transformers serve`, and
OpenAI itself take a multipart upload (`file`, `model`, `response_format`) and answer JSON with
`text` (and, as `verbose_json`, the `language` heard). The clip goes up as 16 kHz mono WAV, the
one format every such server reads. The server batches concurrent uploads itself, so each of the
worker's threads calls it directly. A server that refuses `verbose_json` is asked for `json`
from then on (no language hint then).

This module imports neither torch nor transformers: a worker using it needs neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import httpx

from workers.asr.base import (
    BaseRecogniser,
    RecogniserError,
    RecogniserUnavailable,
    Transcript,
    our_language,
)
from workers.audio import Clip, to_wav

log = logging.getLogger(__name__)

#: Answers larger than this are not a transcript of a few minutes of speech.
MAX_ANSWER_BYTES = 1024 * 1024


class OpenAIRecogniser(BaseRecogniser):
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 timeout: float = 120.0) -> None:
        self.url = f"{base_url.rstrip('/')}/audio/transcriptions"
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client: httpx.Client | None = None
        self._format = "verbose_json"

    def load(self) -> None:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, headers=self._headers)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        return [self.transcribe(clip) for clip in clips]

    def transcribe(self, clip: Clip) -> Transcript:
        self.load()
        assert self._client is not None
        started = time.perf_counter()
        wav = to_wav(clip)
        response = self._post(wav, self._format)
        if response.status_code in (400, 422) and self._format == "verbose_json":
            log.info("the transcription server refused verbose_json; asking for json")
            self._format = "json"
            response = self._post(wav, self._format)
        if response.status_code in (401, 403, 404):
            raise RecogniserUnavailable(
                f"transcription server refused: HTTP {response.status_code}")
        if response.status_code != 200:
            raise RecogniserError(f"transcription server answered HTTP {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise RecogniserError("transcription answer too large")
        try:
            body = response.json()
            text = str(body["text"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecogniserError(f"unreadable transcription answer: {exc}") from exc
        return Transcript(text=text.strip(), language=our_language(body.get("language")),
                          seconds=time.perf_counter() - started)

    def _post(self, wav: bytes, response_format: str) -> httpx.Response:
        assert self._client is not None
        try:
            return self._client.post(
                self.url, files={"file": ("voice.wav", wav, "audio/wav")},
                data={"model": self.model, "response_format": response_format})
        except httpx.HTTPError as exc:
            raise RecogniserUnavailable(f"transcription server unreachable: {exc}") from exc
