"""What every host served by an OpenAI-compatible server shares: the connection and its errors.

vLLM, SGLang, ``transformers serve``, AI Singapore's hosted SEA-LION API and OpenAI itself serve
the chat model (``POST /chat/completions``), the guard model (the same endpoint) and Whisper
(``POST /audio/transcriptions``) under one API root, and list what they serve at ``GET /models``.
`OpenAIServer` is one such server as the chat, guard and speech hosts talk to it:

- `normalize_base_url`: the API root, as the OpenAI SDK takes it (``/v1`` added to a bare host);
- `api_headers`: the key as a bearer token;
- a lazily made ``httpx.Client`` (`client`) and thread pool (`executor`), both closed by `close`;
- `send`: one call, with retries of what may pass (no answer at all, HTTP 429 and 5xx, after the
  server's ``Retry-After`` or an exponential backoff, at most ``MAX_BACKOFF`` seconds) and none
  of what will not (a read timeout: the server took the request and is slow, so sending it
  again only adds load; any other 4xx);
- `require_model`: ``GET /models``, and whether the host's model is among them (every host's
  ``load()``: it tells a server that is down from one that serves something else).

The errors are the server's, not a family's: each host turns them into its own (the chat
host's ``EngineError``, the guard's ``GuardUnavailable``, the recogniser's
``RecogniserUnavailable``)::

    ServerError              no usable answer from the server
     ├── ServerUnreachable   no HTTP answer at all (refused, reset, DNS, connect timeout),
     │                       after the retries
     ├── ServerTimeout       the server took the request and did not answer in time
     └── ServerRefused       an HTTP error status (``status``), after the retries; the message
                             quotes the server's own reason

Messages name the server by its URL (the log filter and the readiness reasons redact the
credentials inside one). `image_data_url` is how every host sends a photo: a JPEG ``data:``
URL, decoded and downscaled as the in-process models see it (`workers.images.load_image`).

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import base64
import email.utils
import io
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "MAX_BACKOFF",
    "OpenAIServer",
    "ServerError",
    "ServerRefused",
    "ServerTimeout",
    "ServerUnreachable",
    "api_headers",
    "body_snippet",
    "image_data_url",
    "normalize_base_url",
]

log = logging.getLogger(__name__)

#: Statuses worth asking again: rate limits and server errors (every other 4xx is final).
RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))
#: Seconds; also the most a Retry-After header can make a call wait.
MAX_BACKOFF = 30.0
JPEG_QUALITY = 90


class ServerError(Exception):
    """No usable answer from an OpenAI-compatible server."""

    status: int | None = None


class ServerUnreachable(ServerError):
    """No HTTP answer at all, even after the retries."""


class ServerTimeout(ServerError):
    """The server took the request but did not answer within the timeout."""


class ServerRefused(ServerError):
    """An HTTP error status, after the retries."""

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
    and downscaled as the in-process models see it (`workers.images.load_image`)."""
    from workers.images import load_image

    image = load_image(data, max_pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def retry_after(response: httpx.Response) -> float | None:
    """The server's Retry-After, in seconds (a number or an HTTP date), or None."""
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


def body_snippet(response: httpx.Response, limit: int = 300) -> str:
    """The server's own reason for an error, on one line, at most `limit` characters."""
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


class OpenAIServer:
    """One OpenAI-compatible server, as a host talks to it; thread-safe.

    ``label`` names the server in messages ("OpenAI-compatible server", "guard server") and
    ``key_setting`` the setting of its key (OPENAI_API_KEY) in a refusal's advice;
    ``timeout`` bounds each attempt (the connection within ``connect_timeout``);
    ``max_retries`` is how many more attempts what may pass gets, ``backoff * 2**attempt``
    seconds apart; ``connections`` bounds the connections, and ``threads`` (as many by
    default) the pool that sends the calls a host makes together.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, setting: str = "base_url",
                 label: str = "OpenAI-compatible server", key_setting: str = "the API key",
                 timeout: float = 120.0,
                 connect_timeout: float = 10.0, max_retries: int = 3, backoff: float = 0.5,
                 connections: int = 16, threads: int | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        self.base_url = normalize_base_url(base_url, setting)
        self.label = label
        self.key_setting = key_setting
        self.timeout = float(timeout)
        self.connect_timeout = min(float(connect_timeout), self.timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.connections = int(connections)
        self.threads = max(1, int(threads if threads is not None else connections))
        self.has_key = bool(api_key)
        self._api_key = api_key or None
        self._transport = transport
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIServer({self.label} at {self.base_url})"

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers=api_headers(self._api_key), transport=self._transport,
                    timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                    limits=httpx.Limits(max_connections=self.connections,
                                        max_keepalive_connections=self.connections))
            return self._client

    def executor(self, name: str) -> ThreadPoolExecutor:
        """The host's pool of `threads` threads, for calls that go out together."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=name)
            return self._pool

    def close(self) -> None:
        """Close the connections and the pool (the server can still be used afterwards)."""
        with self._lock:
            client, self._client = self._client, None
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()

    def send(self, method: str, path: str, **request: Any) -> httpx.Response:
        """One call with retries (``request``: httpx's ``json``, ``files``, ``data``).

        Returns the response, a success or an error status that is final (or still a 429/5xx
        after the retries: `refused` words it); raises `ServerUnreachable` or `ServerTimeout`.
        """
        url = f"{self.base_url}{path}"
        client = self.client()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = client.request(method, url, **request)
            except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
                raise ServerTimeout(
                    f"{self.label} at {self.base_url} timed out after {self.timeout:g}s "
                    f"({type(exc).__name__})") from exc
            except httpx.TransportError as exc:  # refused, reset, DNS, connect/pool timeout
                if attempt >= self.max_retries:
                    raise ServerUnreachable(
                        f"{self.label} at {self.base_url} unreachable: "
                        f"{type(exc).__name__}: {exc or 'no answer'} "
                        f"(after {attempt + 1} attempt(s))") from exc
                log.warning("%s %s: %s; retrying", method, url, type(exc).__name__)
            else:
                if (response.is_success or response.status_code not in RETRY_STATUS
                        or attempt >= self.max_retries):
                    response.attempts = attempt + 1  # type: ignore[attr-defined]
                    return response
                wait = retry_after(response)
                log.warning("%s %s: HTTP %d; retrying", method, url, response.status_code)
                response.close()
            if wait is None:
                wait = self.backoff * (2**attempt) * (1 + 0.25 * random.random())
            time.sleep(min(wait, MAX_BACKOFF))
            attempt += 1

    def refused(self, response: httpx.Response) -> ServerRefused:
        """The error for an error status `send` returned, with the server's own reason."""
        attempts = getattr(response, "attempts", 1)
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        return ServerRefused(
            f"{self.label} at {self.base_url} answered HTTP {response.status_code}{tries}: "
            f"{body_snippet(response)}", response.status_code)

    def call(self, method: str, path: str, **request: Any) -> httpx.Response:
        """`send`, and a success or a `ServerError`."""
        response = self.send(method, path, **request)
        if not response.is_success:
            raise self.refused(response)
        return response

    def served_models(self) -> list[str]:
        """The ids ``GET /models`` lists; raises `ServerError`."""
        response = self.call("GET", "/models")
        try:
            entries = response.json().get("data")
        except (ValueError, AttributeError):
            raise ServerError(f"{self.label} at {self.base_url}: /models is not JSON") from None
        if not isinstance(entries, list):
            raise ServerError(f"{self.label} at {self.base_url}: /models has no model list")
        return [str(entry["id"]) for entry in entries if isinstance(entry, dict) and entry.get("id")]

    def require_model(self, model: str) -> list[str]:
        """Check that the server answers and serves `model` (what a host's ``load()`` does);
        the models it serves, or a `ServerError` that says what is wrong."""
        try:
            served = self.served_models()
        except ServerRefused as exc:
            if exc.status in (401, 403):
                raise ServerRefused(f"{exc} -- check {self.key_setting}", exc.status) from exc
            raise
        if model not in served:
            raise ServerRefused(
                f"model {model!r} is not served by the {self.label} at {self.base_url}; "
                f"it serves: {', '.join(served) or 'nothing'}", 404)
        return served
