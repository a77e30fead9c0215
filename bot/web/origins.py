"""Where a request comes from, for the routes that trust "this machine" or refuse browsers.

    from_this_machine(request)   loopback peer, no proxy between, and a loopback Host header
    browser_cross_site(request)  a page of another site sent it (Origin / Sec-Fetch-Site)

A loopback peer alone proves little: a page on any site can make the browser send requests to
127.0.0.1 (DNS rebinding points the page's own name at 127.0.0.1, so the browser even lets it
read the answers). What that page cannot choose is the Host header: the browser sends the name
in the page's URL, the attacker's domain. So trust in this machine (/metrics without
METRICS_TOKEN, the /chat page without a sign-in) needs the peer AND the Host to be loopback.

Platforms post webhooks from servers, which send neither `Origin` nor `Sec-Fetch-Site`; a
browser always sends one of them on a cross-site POST, so such a request is never a platform's.
"""

from __future__ import annotations

from starlette.requests import Request

from bot.kernel.settings import is_loopback

#: Headers a reverse proxy adds: a request that carries one came through a proxy, from anywhere.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def host_name(host_header: str) -> str:
    """The name or address in a Host header, without its port (`[::1]:8080` -> `::1`)."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


def loopback_host(host_header: str | None) -> bool:
    """Whether a Host header names this machine: `localhost`, `127.0.0.1` (any 127/8 address)
    or `[::1]`, with any port."""
    return bool(host_header) and is_loopback(host_name(host_header or ""))


def from_this_machine(request: Request) -> bool:
    """A client on this machine talking to this machine by a loopback name: a loopback peer,
    no proxy header, and a loopback Host (see the module docstring)."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    return is_loopback(peer) and loopback_host(request.headers.get("host"))


def browser_cross_site(request: Request) -> bool:
    """Whether a browser sent this request for a page of another origin: an `Origin` header
    naming another origin (or "null"), or `Sec-Fetch-Site: cross-site` / `same-site`."""
    fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.strip().lower() != f"{request.url.scheme}://{request.url.netloc}".lower()
