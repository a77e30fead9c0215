"""A loopback stand-in for an OpenAI-compatible speech-to-text server (vLLM serving Whisper).

``POST /v1/audio/transcriptions`` takes what OpenAI's API reference (createTranscription) and
vLLM take: a ``multipart/form-data`` body with ``file`` (the audio, with a filename) and
``model`` (both required), and optional ``language``, ``prompt``, ``response_format`` (``json``,
``text``, ``srt``, ``verbose_json``, ``vtt``) and ``temperature``. It answers ``{"text": ...}``
for ``json`` and ``{"task": "transcribe", "language": <Whisper's language name>, "duration",
"text", "segments": []}`` for ``verbose_json``, as OpenAI does ("english", not "en").
``GET /v1/models`` lists the models it serves (:attr:`TranscriptionStandIn.models`), as vLLM
and OpenAI do: a recogniser checks there that the server is up and serves its model.

The uploaded file must be a WAV this suite can read (16-bit PCM); the stand-in measures its
length and answers the transcript :meth:`TranscriptionStandIn.say` registered for that length
(rounded to 0.1 s), else the default one, so concurrent tests get their own words. Without a
bearer token that matches (when one is set) it answers 401 like OpenAI. Every call is recorded
with its form fields and the audio's duration, sample rate and channels; malformed requests
land in ``spec_errors``, which tests assert stays empty.
"""

from __future__ import annotations

import io
import json
import time
import wave
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
#: Whisper's names for the codes these tests use (tokenization_whisper.LANGUAGES).
WHISPER_NAMES = {"en": "english", "th": "thai", "id": "indonesian", "ms": "malay",
                 "vi": "vietnamese", "zh": "chinese", "tl": "tagalog", "ta": "tamil",
                 "my": "myanmar", "km": "khmer", "lo": "lao"}


@dataclass
class Call:
    name: str  # "transcriptions", or the path of anything else
    fields: dict[str, str]
    seconds: float  # the uploaded audio's length
    sample_rate: int
    channels: int
    status: int
    at: float


class TranscriptionStandIn(LoopbackStandIn):
    service = "transcription"

    def __init__(self, api_key: str | None = None,
                 default: tuple[str, str] = ("", "en"),
                 models: tuple[str, ...] = ("openai/whisper-large-v3-turbo",
                                            "whisper-large-v3-turbo", "whisper")) -> None:
        super().__init__()
        self.api_key = api_key
        self.default = default
        self.models = models
        self._scripts: dict[float, tuple[str, str]] = {}
        self.refuse_verbose = False

    def say(self, seconds: float, text: str, language: str) -> None:
        """Answer `text`, heard in `language` (our code), for clips `seconds` long."""
        with self._cond:
            self._scripts[round(seconds, 1)] = (text, language)

    def reset(self) -> None:
        super().reset()
        with self._cond:
            self._scripts.clear()
            self.refuse_verbose = False

    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        body = req.read_body()
        path = req.path.split("?", 1)[0]

        def answer() -> tuple[int, bytes, str, Call]:
            return self._answer(req.command, path, dict(req.headers), body, arrived)

        def failed() -> tuple[int, bytes, str, Call]:
            return 500, b'{"error": {"message": "stand-in failure"}}', "application/json", \
                Call(path, {}, 0.0, 0, 0, 500, arrived)

        name = "models" if path == "/v1/models" else "transcriptions"
        status, payload, ctype, _ = self._serve(name, arrived, answer, failed,
                                                lambda result: result[3])
        req.answer(status, payload, ctype)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes,
                arrived: float) -> tuple[int, bytes, str, Call]:
        def out(status: int, payload: Any, fields: dict, seconds: float = 0.0, rate: int = 0,
                channels: int = 0, ctype: str = "application/json"):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            return status, data, ctype, Call(path if status == 404 else "transcriptions",
                                             fields, seconds, rate, channels, status, arrived)

        authorised = self.api_key is None or {k.lower(): v for k, v in headers.items()}.get(
            "authorization", "") == f"Bearer {self.api_key}"
        if method == "GET" and path == "/v1/models":
            listed = [{"id": m, "object": "model", "owned_by": "stand-in"} for m in self.models]
            status, data, ctype, call = (
                out(200, {"object": "list", "data": listed}, {}) if authorised
                else out(401, _error("Incorrect API key provided", "invalid_request_error"), {}))
            call.name = "models"
            return status, data, ctype, call
        if method != "POST" or path != "/v1/audio/transcriptions":
            self._error(f"{method} {path}: not an endpoint of the transcription API")
            return out(404, _error("Not found", "invalid_request_error"), {})
        if self.api_key is not None:
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if auth != f"Bearer {self.api_key}":
                return out(401, _error("Incorrect API key provided", "invalid_request_error"),
                           {})
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            self._error(f"transcriptions: Content-Type {ctype!r} is not multipart/form-data")
            return out(400, _error("Expected multipart/form-data", "invalid_request_error"), {})
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        fields: dict[str, str] = {}
        audio: bytes | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file" and part.get_filename():
                audio = part.get_payload(decode=True)
            elif name:
                fields[str(name)] = part.get_content().strip()
        problems = []
        if audio is None:
            problems.append("'file' (with a filename) is required")
        if not fields.get("model"):
            problems.append("'model' is required")
        response_format = fields.get("response_format", "json")
        if response_format not in FORMATS:
            problems.append(f"response_format {response_format!r} is not one of {FORMATS}")
        try:
            with wave.open(io.BytesIO(audio or b"")) as wav:
                rate, channels = wav.getframerate(), wav.getnchannels()
                seconds = wav.getnframes() / rate
        except (wave.Error, EOFError) as exc:
            problems.append(f"the file is not a WAV this server reads: {exc}")
            rate = channels = 0
            seconds = 0.0
        if problems:
            self._error("transcriptions: " + "; ".join(problems))
            return out(400, _error("; ".join(problems), "invalid_request_error"), fields)
        if response_format == "verbose_json" and self.refuse_verbose:
            return out(400, _error("Unsupported response_format", "invalid_request_error"),
                       fields, seconds, rate, channels)
        with self._cond:
            text, language = self._scripts.get(round(seconds, 1), self.default)
        if response_format == "verbose_json":
            payload: Any = {"task": "transcribe", "language": WHISPER_NAMES.get(language, language),
                            "duration": seconds, "text": text, "segments": []}
        elif response_format == "json":
            payload = {"text": text}
        else:
            return out(200, text.encode(), fields, seconds, rate, channels, "text/plain")
        return out(200, payload, fields, seconds, rate, channels)


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
