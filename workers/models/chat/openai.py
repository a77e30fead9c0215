"""The chat model on an OpenAI-compatible chat-completions server.

vLLM (``vllm serve aisingapore/Qwen-SEA-LION-v4-8B-VL``), SGLang, ``transformers serve`` and AI Singapore's
hosted SEA-LION API all speak ``POST {base_url}/chat/completions``. Such a server batches concurrent
requests itself (continuous batching), so this host does no batching of its own: every request goes out
at once, on its own connection, from a thread pool of ``concurrency`` threads. That makes it safe -- and
best -- to call from many threads at a time (a batcher in front would hold each batch back until its
slowest answer).

Images travel inline as ``data:image/jpeg;base64,...`` URLs, downscaled to ``max_image_pixels`` first (the
same decoding as the in-process model: EXIF orientation, transparency flattened onto white). Every text sent
has its chat-template control tokens neutralised first (`workers.models.control_tokens`): the server
tokenises what its template renders as it is. The connection, its retries and its errors are every
server host's (`workers.models.openai_api`); a request that gets no answer at all makes the host
unavailable until the next answer.

This module imports neither torch nor transformers: a worker that only talks to a server needs neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

import httpx

from workers.models.chat.base import (
    BaseEngine,
    ChatTurn,
    EngineError,
    EngineOverloaded,
    GenerationRequest,
    GenerationResult,
    normalize_turns,
)
from workers.models.control_tokens import neutralise_control_tokens
from workers.models.openai_api import (
    OpenAIServer,
    ServerError,
    ServerUnreachable,
    body_snippet,
    image_data_url,
)

logger = logging.getLogger(__name__)

__all__ = ["OpenAIEngine"]


def _error_result(exc: BaseException, seconds: float = 0.0) -> GenerationResult:
    message = str(exc) or repr(exc)
    return GenerationResult(text="", seconds=seconds, error=f"{type(exc).__name__}: {message}")


def _engine_error(exc: ServerError) -> EngineError:
    """The server's error as the chat family's (429: overloaded, may pass)."""
    cls = EngineOverloaded if exc.status == 429 else EngineError
    error = cls(str(exc))
    error.__cause__ = exc
    return error


class OpenAIEngine(BaseEngine):
    name = "openai"
    remote: ClassVar[bool] = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120,
        max_retries: int = 3,
        max_image_pixels: int = 1024 * 1024,
        concurrency: int = 16,
        backoff: float = 0.5,
    ) -> None:
        """Record settings only; nothing is contacted until ``load()`` or the first request.

        ``base_url`` is the API root, as the OpenAI SDK takes it (``http://localhost:8000/v1``,
        ``https://api.sea-lion.ai/v1``); a URL without a path gets ``/v1``. ``timeout`` bounds each HTTP
        attempt (a generation included), ``max_retries`` the extra attempts after a connection error, HTTP
        429 or 5xx, waiting ``backoff * 2**attempt`` seconds (or the server's Retry-After) in between.
        """
        if not model:
            raise ValueError("model must name the model the server serves")
        self.server = OpenAIServer(base_url, api_key, setting="OPENAI_BASE_URL",
                                   key_setting="OPENAI_API_KEY", timeout=timeout,
                                   max_retries=max_retries, backoff=backoff,
                                   connections=concurrency)
        self.base_url = self.server.base_url
        self.model = str(model)
        self.timeout = self.server.timeout
        self.max_retries = self.server.max_retries
        self.max_image_pixels = max_image_pixels
        self.concurrency = self.server.connections
        self.served_models: list[str] = []

    # ------------------------------------------------------------------ plumbing

    @property
    def loaded(self) -> bool:
        return self.health().serving

    def close(self) -> None:
        """Close the HTTP connections and the thread pool (the engine can still be used afterwards)."""
        self.server.close()

    def _call(self, method: str, path: str, payload: dict | None = None) -> httpx.Response:
        """One call with retries; a 2xx response, or ``EngineError``. An answer makes the host
        ready again; none at all makes it unavailable."""
        try:
            response = self.server.call(method, path, json=payload)
        except ServerUnreachable as exc:
            self._lost(exc)
            raise _engine_error(exc) from exc
        except ServerError as exc:
            raise _engine_error(exc) from exc
        self._answered()
        return response

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        """Check once that the server answers and serves ``model``; raise ``EngineError`` if not."""
        try:
            self.served_models = self.server.require_model(self.model)
        except ServerError as exc:
            raise _engine_error(exc) from exc
        logger.debug("OpenAI-compatible server at %s serves %s", self.base_url, self.model)

    # ------------------------------------------------------------------ generation

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Send every request at once (the server batches them); one result per request, in order."""
        requests = list(requests)
        if not requests:
            return []
        if len(requests) == 1:
            return [self._generate_one(requests[0])]
        futures = [self.submit(request) for request in requests]
        return [future.result() for future in futures]

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Send ``request`` from the host's thread pool; the future never raises."""
        return self.server.executor("openai-engine").submit(self._generate_one, request)

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        try:
            payload = self._payload(request)
        except Exception as exc:  # noqa: BLE001 - one bad request never fails the batch
            logger.warning("request rejected: %s: %s", type(exc).__name__, exc)
            return _error_result(exc)
        try:
            response = self._call("POST", "/chat/completions", payload)
            result = self._parse(response)
        except Exception as exc:  # noqa: BLE001 - reported in the request's result
            seconds = time.perf_counter() - started
            logger.warning("request failed after %.2fs: %s: %s", seconds, type(exc).__name__, exc)
            return _error_result(exc, seconds)
        seconds = time.perf_counter() - started
        return GenerationResult(
            text=result.text,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            seconds=seconds,
        )

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"request must be a GenerationRequest, not {type(request).__name__}")
        max_new_tokens = int(request.max_new_tokens)
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {request.max_new_tokens}")
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": neutralise_control_tokens(request.system)})
        for turn in normalize_turns(request.turns):
            messages.append(self._message(turn))
        return {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "stream": False}

    def _message(self, turn: ChatTurn) -> dict[str, Any]:
        # The server renders its chat template over this text and tokenises it as it is: a
        # control token typed by a person (or echoed in an answer) would be one.
        text = neutralise_control_tokens(turn.text or "")
        if turn.role != "user" or not turn.images:
            # Plain string content: what every server (text-only ones included) accepts.
            return {"role": turn.role, "content": text}
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": self._data_url(data)}} for data in turn.images
        ]
        if text:
            parts.append({"type": "text", "text": text})
        return {"role": "user", "content": parts}

    def _data_url(self, data: bytes) -> str:
        return image_data_url(data, self.max_image_pixels)

    def _parse(self, response: httpx.Response) -> GenerationResult:
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EngineError(
                f"OpenAI-compatible server at {self.base_url} sent a malformed completion: "
                f"{body_snippet(response)}"
            ) from exc
        if isinstance(content, list):  # a few servers answer with content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        usage = data.get("usage") or {}
        return GenerationResult(
            text=(content or "").strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    # ------------------------------------------------------------------ health

    def details(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "concurrency": self.concurrency,
                "api_key": self.server.has_key}
