"""A guard served by an OpenAI-compatible server (GUARD_BACKEND=openai), e.g.
``vllm serve aisingapore/Qwen-SEA-Guard-4B-2602`` or ``vllm serve Qwen/Qwen3Guard-Gen-4B``.

Each check is one ``POST {base_url}/chat/completions`` at temperature 0 with the format's
messages (`workers.models.guard.formats`); photos go inline as JPEG ``data:`` URLs when the format's
model reads images. The server batches concurrent checks itself, so checks go out at once from
the worker's threads; the windows of one long text (`check_many`, for `check_whole`) go out at
most `concurrency` at a time. A check that got no answer, or a 429 or 5xx, is tried once more;
anything else without a verdict is `GuardUnavailable`, for GUARD_FAIL to decide. Control tokens
in every text are neutralised before it is sent (`GuardFormat.messages`). The connection and its
errors are every server host's (`workers.models.openai_api`): `load()` checks that the server
serves the guard model, a check that gets no answer at all makes the guard unavailable, and the
next answer makes it ready again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from workers.models.guard.base import (
    BaseGuard,
    GuardError,
    GuardRequest,
    GuardUnavailable,
    GuardVerdict,
)
from workers.models.guard.formats import GuardFormat
from workers.models.openai_api import (
    OpenAIServer,
    ServerError,
    ServerUnreachable,
    image_data_url,
)

log = logging.getLogger(__name__)

__all__ = ["OpenAIGuard"]


class OpenAIGuard(BaseGuard):
    name = "openai"
    remote: ClassVar[bool] = True

    def __init__(self, base_url: str, model: str, guard_format: GuardFormat,
                 api_key: str | None = None, *, timeout: float = 30.0,
                 max_image_pixels: int = 1024 * 1024, transport: httpx.BaseTransport | None = None,
                 concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.server = OpenAIServer(base_url, api_key, setting="GUARD_BASE_URL",
                                   label="guard server", key_setting="GUARD_API_KEY",
                                   timeout=timeout, connect_timeout=5.0, max_retries=1,
                                   backoff=0.2, connections=64, threads=concurrency,
                                   transport=transport)
        self.base_url = self.server.base_url
        self.model = model
        self.format = guard_format
        self.timeout = timeout
        self.max_image_pixels = max_image_pixels
        self.concurrency = concurrency

    def close(self) -> None:
        self.server.close()

    def _load(self) -> None:
        """Check that the server serves the guard model; until it does, the guard is
        unavailable (the checks still go out, and GUARD_FAIL decides while they fail)."""
        try:
            self.server.require_model(self.model)
        except ServerError as exc:
            raise GuardUnavailable(str(exc)) from exc

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

    def check_many(self, requests: Sequence[GuardRequest]) -> list[GuardVerdict | GuardError]:
        """Several checks at once, at most `concurrency` in flight (the server batches them);
        the pool is shared by the worker's threads, so one long text cannot flood the server."""
        if len(requests) <= 1:
            return super().check_many(requests)
        pool = self.server.executor("guard-windows")
        futures = [pool.submit(self.check, request) for request in requests]
        out: list[GuardVerdict | GuardError] = []
        for future in futures:
            error = future.exception()
            if error is None:
                out.append(future.result())
            elif isinstance(error, GuardError):
                out.append(error)
            else:
                raise error
        return out

    def _post(self, payload: dict) -> httpx.Response:
        try:
            response = self.server.call("POST", "/chat/completions", json=payload)
        except ServerUnreachable as exc:
            self._lost(exc)
            raise GuardUnavailable(str(exc)) from None
        except ServerError as exc:
            raise GuardUnavailable(str(exc)) from None
        self._answered()
        return response

    def details(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "format": self.format.name}
