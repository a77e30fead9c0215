"""The one outbound-fetch policy every media download goes through.

A person's message names what we download (a Telegram file id, a LINE message id, a WhatsApp
media id whose URL the Graph API answers), so each download is treated as hostile until the
policy says otherwise. `Fetcher.get(url)` requests a URL only when every hop passes:

* scheme: https, or http outside ``ENVIRONMENT=production``;
* host: one of the platform's allowed hosts (``*.example.com`` matches its subdomains);
* address: the host resolves to public addresses only (never private, loopback, link-local,
  multicast, reserved or unspecified), and the connection goes to the address that was checked
  (no second DNS answer in between);
* redirects: followed by hand, at most `FetchPolicy.max_redirects`, each hop checked as above;
* size: the announced Content-Length and the streamed body are both capped at ``max_bytes``:
  nothing past the cap is ever buffered;
* time: connect and read timeouts on every hop.

The configured base URLs (``TELEGRAM_API_BASE_URL``, ``LINE_DATA_API_BASE_URL``,
``WHATSAPP_API_BASE_URL``) are *origins*: their exact scheme, host and port are trusted as the
operator wrote them, even on a private or loopback address (a local Bot API server, the test
stand-ins). Another port or another name on the same loopback address is not an origin, and is
refused like any internal target.

Secret headers (a bearer token) go only to hops that pass the policy, that is only to allowed
hosts and origins; they are never part of an error message, and neither is the URL (a Telegram
file URL carries the bot token), only its host.

Exception tree (every class is a `MediaError`, so callers keep one ``except``):

    MediaError                       (adapters.base)
     ├── MediaTooLarge               announced or streamed body over ``max_bytes`` (adapters.base)
     ├── FetchRefused                the policy forbids a hop; nothing was sent to it
     │    ├── SchemeRefused          not https where https is required, or not http(s) at all
     │    ├── HostRefused            the host is not allowed for this platform
     │    ├── AddressRefused         the host resolves to an internal address (or not at all)
     │    └── TooManyRedirects       more than ``max_redirects`` hops
     └── FetchFailed                 a timeout, a network error or a non-2xx answer
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from adapters.base import MediaError, MediaTooLarge
from bot.kernel.settings import Settings

__all__ = [
    "AddressRefused",
    "FetchFailed",
    "FetchPolicy",
    "FetchRefused",
    "Fetcher",
    "HostRefused",
    "SchemeRefused",
    "TooManyRedirects",
]

_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchRefused(MediaError):
    """The policy forbids this hop; no request was sent to it."""


class SchemeRefused(FetchRefused):
    pass


class HostRefused(FetchRefused):
    pass


class AddressRefused(FetchRefused):
    pass


class TooManyRedirects(FetchRefused):
    pass


class FetchFailed(MediaError):
    """The request was allowed but did not give a body: timeout, network error, non-2xx."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, lower-case host, port) of `url`, the port filled in from the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass(frozen=True)
class FetchPolicy:
    """What one platform's downloads may reach. Build it with `for_platform`."""

    #: Host names allowed on any hop; ``*.suffix`` matches every subdomain of ``suffix``.
    hosts: frozenset[str]
    #: The configured base URLs' (scheme, host, port): trusted as written, any address.
    origins: frozenset[Origin] = frozenset()
    https_only: bool = True
    max_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_redirects: int = 3

    @classmethod
    def for_platform(cls, settings: Settings, base_urls: Iterable[str],
                     extra_hosts: Iterable[str] = (), *,
                     max_bytes: int | None = None) -> FetchPolicy:
        """The policy of a platform whose API lives at `base_urls`, whose media may also come
        from `extra_hosts` (WhatsApp's CDN); limits and timeouts from the settings."""
        origins = frozenset(origin_of(url) for url in base_urls)
        hosts = frozenset({host for _, host, _ in origins}
                          | {h.strip().lower() for h in extra_hosts if h.strip()})
        return cls(hosts=hosts, origins=origins,
                   https_only=settings.environment == "production",
                   max_bytes=settings.max_download_bytes if max_bytes is None else max_bytes,
                   connect_timeout=settings.fetch_connect_timeout_seconds,
                   read_timeout=settings.fetch_read_timeout_seconds)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
                   for pattern in self.hosts)


@dataclass
class _Hop:
    url: str
    #: The address to connect to (checked), or None to connect to the URL as written (origins).
    pinned: str | None = None
    host: str = ""
    extensions: dict[str, str] = field(default_factory=dict)


class Fetcher:
    """Downloads under one `FetchPolicy`; one instance per adapter (and event loop)."""

    def __init__(self, policy: FetchPolicy, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.policy = policy
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            p = self.policy
            # No kept-alive connections: one made for a checked address and its TLS name must
            # never carry a request for another name that resolves there.
            self._client = httpx.AsyncClient(
                follow_redirects=False, transport=self._transport, trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
                timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(self, url: str, *, secret_headers: Mapping[str, str] | None = None,
                  max_bytes: int | None = None) -> bytes:
        """The body at `url`, at most `max_bytes` (default: the policy's), following allowed
        redirects. `secret_headers` (a bearer token) go to allowed hops only."""
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        for _ in range(self.policy.max_redirects + 1):
            hop = await self._check(url)
            # Identity: the cap counts the bytes we keep, and no gzip bomb gets inflated.
            headers = {"Accept-Encoding": "identity", **(secret_headers or {})}
            request_url = url
            if hop.pinned is not None:
                # Connect to the address we checked; the name still goes in Host and in TLS.
                request_url = _with_host(url, hop.pinned)
                headers["Host"] = _netloc(url)
            try:
                request = self._http().build_request("GET", request_url, headers=headers,
                                                     extensions=hop.extensions or None)
                response = await self._http().send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"download from {hop.host} timed out") from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(f"download from {hop.host} failed: "
                                  f"{type(exc).__name__}") from exc
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = str(httpx.URL(url).join(response.headers["location"]))
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchFailed(f"{hop.host} answered HTTP {response.status_code}",
                                      response.status_code)
                return await _read_capped(response, limit, hop.host)
            finally:
                await response.aclose()
        raise TooManyRedirects(f"more than {self.policy.max_redirects} redirects")

    async def _check(self, url: str) -> _Hop:
        scheme, host, port = origin_of(url)
        if scheme not in _DEFAULT_PORTS or not host:
            raise SchemeRefused(f"not an http(s) URL (scheme {scheme!r})")
        if (scheme, host, port) in self.policy.origins:
            return _Hop(url=url, host=host)
        if self.policy.https_only and scheme != "https":
            raise SchemeRefused(f"plain http to {host} refused: https only in production")
        if not self.policy.host_allowed(host):
            raise HostRefused(f"{host} is not an allowed host for this platform")
        address = await _public_address(host, port)
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        return _Hop(url=url, pinned=address, host=host, extensions=extensions)


async def _public_address(host: str, port: int) -> str:
    """One address of `host`, after checking that every address it resolves to is public."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            raise AddressRefused(f"{host} does not resolve") from exc
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    for address in addresses:
        if not is_public_address(address):
            raise AddressRefused(f"{host} resolves to an internal address")
    return addresses[0]


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _read_capped(response: httpx.Response, limit: int, host: str) -> bytes:
    announced = response.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise MediaTooLarge(f"{host} announced {announced} bytes, over {limit}", limit)
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes(_CHUNK):
            if len(body) + len(chunk) > limit:
                raise MediaTooLarge(f"body from {host} is over {limit} bytes", limit)
            body += chunk
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"download from {host} timed out") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"download from {host} failed: {type(exc).__name__}") from exc
    return bytes(body)


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def _with_host(url: str, address: str) -> str:
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()
