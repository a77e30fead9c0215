"""A guard served by an OpenAI-compatible server (GUARD_BACKEND=openai), e.g.
``vllm serve aisingapore/Qwen-SEA-Guard-4B-2602`` or ``vllm serve Qwen/Qwen3Guard-Gen-4B``.

Each check is one ``POST {base_url}/chat/completions`` at temperature 0 with the format's
messages (`workers.guards.formats`); photos go inline as JPEG ``data:`` URLs when the format's
model reads images. The server batches concurrent checks itself, so checks go out at once from
the worker's threads. A connection error is tried once more; anything else without an answer is
`GuardUnavailable`, for GUARD_FAIL to decide.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from workers.engines.openai import api_headers, image_data_url, normalize_base_url
from workers.guards.base import BaseGuard, GuardRequest, GuardUnavailable, GuardVerdict
from workers.guards.formats import GuardFormat

log = logging.getLogger(__name__)

__all__ = ["OpenAIGuard"]


class OpenAIGuard(BaseGuard):
    name = "openai"

    def __init__(self, base_url: str, model: str, guard_format: GuardFormat,
                 api_key: str | None = None, *, timeout: float = 30.0,
                 max_image_pixels: int = 1024 * 1024, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.base_url = normalize_base_url(base_url, "GUARD_BASE_URL")
        self.model = model
        self.format = guard_format
        self.timeout = timeout
        self.max_image_pixels = max_image_pixels
        self._api_key = api_key or None
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers=api_headers(self._api_key), transport=self._transport,
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def load(self) -> None:
        """Check that the server serves the guard model; a server that is down is only logged
        (the checks fail, and GUARD_FAIL decides, until it is back)."""
        try:
            response = self._http().get(f"{self.base_url}/models")
            response.raise_for_status()
            served = [str(m.get("id")) for m in response.json().get("data", [])
                      if isinstance(m, dict)]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("guard server at %s not answering yet: %s", self.base_url,
                        type(exc).__name__)
            return
        if self.model not in served:
            log.warning("guard model %s is not served at %s (it serves %s)", self.model,
                        self.base_url, ", ".join(served) or "nothing")

    def _image_url(self, data: bytes) -> str:
        return image_data_url(data, self.max_image_pixels)

    def check(self, request: GuardRequest) -> GuardVerdict:
        started = time.perf_counter()
        images = self._image_url if self.format.images else None
        try:
            messages = self.format.messages(request, image_url=images)
        except ValueError as exc:  # an image that cannot be decoded: check the text alone
            log.info("guard: image dropped (%s)", exc)
            messages = self.format.messages(
                GuardRequest(request.prompt, (), request.response, request.language))
        payload = {"model": self.model, "messages": messages, "temperature": 0,
                   "max_tokens": self.format.max_new_tokens, "stream": False}
        response = self._post(payload)
        try:
            content = response.json()["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise GuardUnavailable(f"guard server at {self.base_url} sent a malformed "
                                   "completion") from None
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return self.format.verdict(str(content), time.perf_counter() - started)

    def _post(self, payload: dict) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        for attempt in (0, 1):
            try:
                response = self._http().post(url, json=payload)
            except httpx.TimeoutException as exc:
                raise GuardUnavailable(f"guard server at {self.base_url} timed out "
                                       f"({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                if attempt:
                    raise GuardUnavailable(f"guard server at {self.base_url} unreachable: "
                                           f"{type(exc).__name__}") from None
                time.sleep(0.2)
                continue
            if response.is_success:
                return response
            if response.status_code >= 500 and not attempt:
                time.sleep(0.2)
                continue
            raise GuardUnavailable(f"guard server at {self.base_url} answered HTTP "
                                   f"{response.status_code}")
        raise GuardUnavailable("unreachable")  # pragma: no cover - the loop returns or raises

    def health(self) -> dict:
        return {"name": self.name, "base_url": self.base_url, "model": self.model,
                "format": self.format.name}
