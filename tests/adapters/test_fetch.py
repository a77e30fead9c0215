"""The outbound-fetch policy (adapters/fetch.py) against a real loopback server.

The stand-ins run on 127.0.0.1, so the policy must trust the configured base URL's own origin
while refusing every other loopback or internal target: both halves are proven here.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import httpx
import pytest

from adapters import fetch
from adapters.base import MediaError, MediaTooLarge
from adapters.fetch import (
    AddressRefused,
    Fetcher,
    FetchFailed,
    FetchPolicy,
    HostRefused,
    SchemeRefused,
    TooManyRedirects,
    is_public_address,
)
from bot.kernel.settings import Settings
from tests.helpers.fetch_server import FetchServer

TOKEN = {"Authorization": "Bearer very-secret-token"}


@pytest.fixture(scope="module")
def servers():
    with FetchServer() as origin, FetchServer() as other:
        yield origin, other


@pytest.fixture()
def origin(servers):
    servers[0].reset()
    servers[1].reset()
    return servers[0]


@pytest.fixture()
def other(servers):
    return servers[1]


def settings(**overrides) -> Settings:
    return Settings(_env_file=None, **{"fetch_read_timeout_seconds": 2.0, **overrides})


def get(policy: FetchPolicy, url: str, **kw) -> bytes:
    async def main() -> bytes:
        fetcher = Fetcher(policy)
        try:
            return await fetcher.get(url, **kw)
        finally:
            await fetcher.aclose()

    return asyncio.run(main())


def policy_for(server: FetchServer, *hosts: str, **overrides) -> FetchPolicy:
    return FetchPolicy.for_platform(settings(**overrides), [server.base_url], hosts)


def redirect(server: FetchServer, to: str, status: int = 302) -> str:
    return f"{server.base_url}/redirect?status={status}&to={quote(to, safe='')}"


def test_the_configured_origin_is_fetched_with_its_token(origin):
    assert get(policy_for(origin), f"{origin.base_url}/bytes/1000", secret_headers=TOKEN) \
        == b"x" * 1000
    [call] = origin.calls_to("bytes")
    assert call.headers["authorization"] == TOKEN["Authorization"]


def test_a_redirect_within_the_origin_is_followed(origin):
    body = get(policy_for(origin), redirect(origin, f"{origin.base_url}/bytes/10", 307))
    assert body == b"x" * 10 and len(origin.calls_to("bytes")) == 1


@pytest.mark.parametrize("target", ["other-port", "localhost-name"])
def test_a_redirect_to_another_loopback_target_is_refused_and_never_reached(origin, other,
                                                                            target):
    port = origin.base_url.rsplit(":", 1)[1]
    to = (f"{other.base_url}/bytes/10" if target == "other-port"
          else f"http://localhost:{port}/bytes/10")
    # Even with the name allowed, a loopback address that is not the configured origin is out.
    policy = policy_for(origin, "localhost")
    with pytest.raises(AddressRefused):
        get(policy, redirect(origin, to), secret_headers=TOKEN)
    assert other.calls == [] and origin.calls_to("bytes") == []


@pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "192.168.1.1", "[::1]",
                                     "[fe80::1]", "0.0.0.0", "[::ffff:127.0.0.1]", "100.64.0.1"])
def test_internal_addresses_are_refused_even_on_an_allowed_name(origin, address):
    host = address.strip("[]")
    with pytest.raises(AddressRefused):
        get(policy_for(origin, host), redirect(origin, f"http://{address}/latest/meta-data"))


def test_a_host_not_allowed_is_refused_before_any_lookup(origin, monkeypatch):
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("resolved a host the policy does not allow")

    monkeypatch.setattr(fetch, "_resolve", no_dns)
    with pytest.raises(HostRefused):
        get(policy_for(origin), redirect(origin, "https://evil.example/steal"),
            secret_headers=TOKEN)


def test_a_name_resolving_to_any_internal_address_is_refused(origin, monkeypatch):
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    monkeypatch.setattr(fetch, "_resolve", rebinding)
    with pytest.raises(AddressRefused):
        get(policy_for(origin, "cdn.example"), redirect(origin, "http://cdn.example/x"))


def test_the_connection_goes_to_the_checked_address(monkeypatch):
    """No second DNS answer: the request is sent to the address that passed the check, with
    the name in Host and in TLS (SNI)."""
    seen: list[httpx.Request] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"pixels")

    monkeypatch.setattr(fetch, "_resolve", resolve)
    policy = FetchPolicy(hosts=frozenset({"*.fbcdn.net"}))

    async def main() -> bytes:
        fetcher = Fetcher(policy, transport=httpx.MockTransport(handler))
        return await fetcher.get("https://scontent.xx.fbcdn.net/v/photo.jpg?x=1")

    assert asyncio.run(main()) == b"pixels"
    [request] = seen
    assert request.url.host == "93.184.216.34" and request.url.path == "/v/photo.jpg"
    assert request.headers["host"] == "scontent.xx.fbcdn.net"
    assert request.extensions["sni_hostname"] == "scontent.xx.fbcdn.net"


def test_https_only_in_production(origin):
    policy = policy_for(origin, "127.0.0.2", environment="production")
    assert policy.https_only
    with pytest.raises(SchemeRefused):
        get(policy, redirect(origin, "http://127.0.0.2/x"))
    assert not policy_for(origin).https_only  # development: http allowed (still checked)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/x", "ftp://x/y"])
def test_other_schemes_are_refused(origin, url):
    with pytest.raises(SchemeRefused):
        get(policy_for(origin), redirect(origin, url))


def test_redirect_chains_end(origin):
    policy = FetchPolicy(hosts=frozenset(), origins=policy_for(origin).origins,
                         https_only=False, max_redirects=1)
    twice = redirect(origin, redirect(origin, f"{origin.base_url}/bytes/1"))
    with pytest.raises(TooManyRedirects):
        get(policy, twice)
    assert origin.calls_to("bytes") == []


def test_an_announced_body_over_the_cap_is_not_read(origin):
    with pytest.raises(MediaTooLarge) as raised:
        get(policy_for(origin), f"{origin.base_url}/announce/{64 * 1024 * 1024}",
            max_bytes=1024 * 1024)
    assert raised.value.limit_bytes == 1024 * 1024


def test_a_streamed_body_is_cut_at_the_cap(origin):
    size = 64 * 1024 * 1024
    with pytest.raises(MediaTooLarge):
        get(policy_for(origin), f"{origin.base_url}/stream/{size}", max_bytes=1024 * 1024)
    time.sleep(0.2)
    # The client hung up at the cap: the server could not push the rest into it.
    assert origin.streamed < size // 2


def test_the_cap_counts_decompressed_bytes(origin):
    with pytest.raises(MediaTooLarge):
        get(policy_for(origin), f"{origin.base_url}/gzip/{32 * 1024 * 1024}",
            max_bytes=1024 * 1024)


def test_a_slow_answer_times_out(origin):
    policy = policy_for(origin, fetch_read_timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(FetchFailed):
        get(policy, f"{origin.base_url}/slow/2")
    assert time.monotonic() - started < 1.5


def test_errors_name_the_host_only(origin):
    secret_path = "/bot123:SECRET-TOKEN/photos/file_1.jpg"
    with pytest.raises(FetchFailed) as raised:
        get(policy_for(origin), f"{origin.base_url}{secret_path}")
    assert raised.value.status_code == 404
    assert "SECRET" not in str(raised.value) and "127.0.0.1" in str(raised.value)
    assert isinstance(raised.value, MediaError)


def test_public_address_table():
    assert is_public_address("93.184.216.34") and is_public_address("2606:4700::1111")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
                    "::1", "fe80::1", "fc00::1", "0.0.0.0", "::", "224.0.0.1",
                    "::ffff:10.0.0.1", "100.64.0.1", "240.0.0.1"):
        assert not is_public_address(address), address
