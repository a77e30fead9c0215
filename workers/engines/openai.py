"""An engine that answers through an OpenAI-compatible chat-completions server.

vLLM (``vllm serve aisingapore/Qwen-SEA-LION-v4-8B-VL``), SGLang, ``transformers serve`` and AI Singapore's
hosted SEA-LION API all speak ``POST {base_url}/chat/completions``. Such a server batches concurrent
requests itself (continuous batching), so this engine does no batching of its own: every request goes out
at once, on its own connection, from a thread pool of ``concurrency`` threads. That makes it safe -- and
best -- to call from many threads at a time: ``generate``/``submit`` can be used directly by the worker's
threads, without a ``BatchingEngine`` in front (which would hold each batch back until its slowest answer).

Images travel inline as ``data:image/jpeg;base64,...`` URLs, downscaled to ``max_image_pixels`` first (the
same decoding as the in-process engine: EXIF orientation, transparency flattened onto white).

This module imports neither torch nor transformers: a worker that only talks to a server needs neither.
"""

from __future__ import annotations

import base64
import email.utils
import io
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from .base import (
    BaseEngine,
    ChatTurn,
    EngineError,
    EngineOverloaded,
    GenerationRequest,
    GenerationResult,
)
from .transformers import _normalize_turns, load_image  # no torch at that module's top level

logger = logging.getLogger(__name__)

__all__ = ["OpenAIEngine", "api_headers", "image_data_url", "normalize_base_url"]

_RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))  # every other 4xx is final
_MAX_BACKOFF = 30.0  # seconds; also the most a Retry-After header can make us wait
_JPEG_QUALITY = 90


class _Unreachable(EngineError):
    """No HTTP answer at all (connection refused, reset, DNS, connect timeout), even after retries."""


class _HTTPFailure(EngineError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def normalize_base_url(base_url: str, setting: str = "base_url") -> str:
    """The API root of an OpenAI-compatible server; ``setting`` names it in the error."""
    url = str(base_url).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{setting} must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}"
        )
    if parts.path in ("", "/"):
        url += "/v1"  # "http://host:8000" means the server root; the OpenAI API lives under /v1
    return url


def api_headers(api_key: str | None) -> dict[str, str]:
    """The headers of every call to an OpenAI-compatible server (the key as a bearer token)."""
    headers = {"Accept": "application/json", "User-Agent": "sealion-bot"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def image_data_url(data: bytes, max_pixels: int | None) -> str:
    """An image as the inline ``data:image/jpeg;base64,...`` URL the chat API takes, decoded
    and downscaled as the in-process engine does (`load_image`)."""
    image = load_image(data, max_pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _body_snippet(response: httpx.Response, limit: int = 300) -> str:
    try:
        data = response.json()
    except ValueError:
        text = response.text
    else:
        # OpenAI style {"error": {"message": ...}}, vLLM {"message": ...}, FastAPI {"detail": ...}
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(data, dict) and (data.get("message") or data.get("detail")):
            text = str(data.get("message") or data.get("detail"))
        elif isinstance(error, str):
            text = error
        else:
            text = response.text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_result(exc: BaseException, seconds: float = 0.0) -> GenerationResult:
    message = str(exc) or repr(exc)
    # private subclasses are reported as the public class they specialise (EngineError)
    kind = next(cls.__name__ for cls in type(exc).__mro__ if not cls.__name__.startswith("_"))
    return GenerationResult(text="", seconds=seconds, error=f"{kind}: {message}")


class OpenAIEngine(BaseEngine):
    name = "openai"

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
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url = normalize_base_url(base_url)
        self.model = str(model)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_image_pixels = max_image_pixels
        self.concurrency = int(concurrency)
        self.backoff = float(backoff)
        self._api_key = api_key or None
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._loaded = False
        self.served_models: list[str] = []

    # ------------------------------------------------------------------ plumbing

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers=api_headers(self._api_key),
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    limits=httpx.Limits(
                        max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                    ),
                )
            return self._client

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai-engine")
            return self._pool

    def close(self) -> None:
        """Close the HTTP connections and the thread pool (the engine can still be used afterwards)."""
        with self._lock:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()

    def _send(self, method: str, path: str, payload: dict | None = None) -> httpx.Response:
        """One call with retries; returns a 2xx response or raises ``_Unreachable`` / ``_HTTPFailure``."""
        url = f"{self.base_url}{path}"
        client = self._http()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = client.request(method, url, json=payload)
            except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
                # The server took the request but is too slow: sending it again only adds load.
                raise EngineError(
                    f"OpenAI-compatible server at {self.base_url} timed out after {self.timeout:g}s "
                    f"({type(exc).__name__})"
                ) from exc
            except httpx.TransportError as exc:  # refused, reset, DNS, connect/pool timeout
                if attempt >= self.max_retries:
                    raise _Unreachable(
                        f"OpenAI-compatible server at {self.base_url} unreachable: "
                        f"{type(exc).__name__}: {exc or 'no answer'} (after {attempt + 1} attempt(s))"
                    ) from exc
                logger.warning("%s %s: %s: %s; retrying", method, url, type(exc).__name__, exc)
            else:
                if response.is_success:
                    return response
                status = response.status_code
                if status not in _RETRY_STATUS or attempt >= self.max_retries:
                    detail = _body_snippet(response)
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    message = (
                        f"OpenAI-compatible server at {self.base_url} answered HTTP {status}"
                        f"{tries}: {detail}"
                    )
                    if status == 429:
                        raise EngineOverloaded(message)
                    raise _HTTPFailure(message, status)
                wait = _retry_after(response)
                logger.warning("%s %s: HTTP %d; retrying", method, url, status)
                response.close()
            if wait is None:
                wait = self.backoff * (2**attempt) * (1 + 0.25 * random.random())
            time.sleep(min(wait, _MAX_BACKOFF))
            attempt += 1

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Check once that the server answers and serves ``model``; raise ``EngineError`` if not."""
        if self._loaded:
            return
        try:
            response = self._send("GET", "/models")
            data = response.json()
        except _HTTPFailure as exc:
            if exc.status in (401, 403):
                raise EngineError(f"{exc} -- check OPENAI_API_KEY") from exc
            raise EngineError(str(exc)) from exc
        except EngineError:
            raise
        except ValueError as exc:
            raise EngineError(f"OpenAI-compatible server at {self.base_url}: /models is not JSON") from exc
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise EngineError(f"OpenAI-compatible server at {self.base_url}: /models has no model list")
        served = [str(entry.get("id")) for entry in entries if isinstance(entry, dict) and entry.get("id")]
        self.served_models = served
        if self.model not in served:
            raise EngineError(
                f"model {self.model!r} is not served by the OpenAI-compatible server at {self.base_url}; "
                f"it serves: {', '.join(served) or 'nothing'}"
            )
        self._loaded = True
        logger.info("OpenAI-compatible server at %s serves %s", self.base_url, self.model)

    # ------------------------------------------------------------------ generation

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Send every request at once (the server batches them); one result per request, in order.

        Unlike the in-process engines this one may be called from several threads at a time.
        """
        requests = list(requests)
        if not requests:
            return []
        if len(requests) == 1:
            return [self._generate_one(requests[0])]
        futures = [self.submit(request) for request in requests]
        return [future.result() for future in futures]

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Send ``request`` from the engine's thread pool; the future never raises."""
        return self._executor().submit(self._generate_one, request)

    def generate(self, request: GenerationRequest, timeout: float | None = None) -> GenerationResult:
        """Answer one request (the ``BatchingEngine.generate`` interface, so the worker can use it directly)."""
        return self.submit(request).result(timeout)

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        try:
            payload = self._payload(request)
        except Exception as exc:  # noqa: BLE001 - one bad request never fails the batch
            logger.warning("request rejected: %s: %s", type(exc).__name__, exc)
            return _error_result(exc)
        try:
            response = self._send("POST", "/chat/completions", payload)
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
            messages.append({"role": "system", "content": request.system})
        for turn in _normalize_turns(request.turns):
            messages.append(self._message(turn))
        return {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "stream": False}

    def _message(self, turn: ChatTurn) -> dict[str, Any]:
        if turn.role != "user" or not turn.images:
            # Plain string content: what every server (text-only ones included) accepts.
            return {"role": turn.role, "content": turn.text or ""}
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": self._data_url(data)}} for data in turn.images
        ]
        if turn.text:
            parts.append({"type": "text", "text": turn.text})
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
                f"{_body_snippet(response)}"
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

    def health(self) -> dict:
        return {
            "name": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "loaded": self._loaded,
            "concurrency": self.concurrency,
            "max_image_pixels": self.max_image_pixels,
            "api_key": bool(self._api_key),
        }
