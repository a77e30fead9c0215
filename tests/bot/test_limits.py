"""Request size limits (issue 12, hole 1) against a real `sealion-bot api` process: a 64 MiB
unsigned body, declared or chunked, is refused with 413 and the server's peak memory does not
grow; the admin login form has a smaller limit than the webhooks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from bot.web.limits import BodyLimit
from tests.helpers.api_process import ApiProcess

MIB = 1024 * 1024
WEBHOOK_LIMIT = 256 * 1024
FORM_LIMIT = 8 * 1024
#: Peak RSS may move a little (allocator, logging); a body read whole would add 64+ MiB.
ALLOWED_GROWTH_KIB = 12 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[ApiProcess]:
    home = tmp_path_factory.mktemp("api")
    process = ApiProcess({
        "ENVIRONMENT": "test", "REDIS_URL": "redis://127.0.0.1:9/0", "DATA_DIR": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'log.db'}",
        "WHATSAPP_ACCESS_TOKEN": "wa-token", "WHATSAPP_APP_SECRET": "wa-app-secret",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "ADMIN_PASSWORD": "a long enough admin password",
        "MAX_WEBHOOK_BODY_BYTES": str(WEBHOOK_LIMIT), "MAX_FORM_BODY_BYTES": str(FORM_LIMIT),
    }, home / "api.log").start()
    yield process
    process.stop()


def raw_post(port: int, path: str, total: int, *, chunked: bool) -> bytes:
    """POST `total` bytes, in 1 MiB pieces, reading the answer while sending; returns what the
    server answered (its status line first)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    answer = bytearray()

    def read() -> None:
        try:
            while data := sock.recv(65536):
                answer.extend(data)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    framing = (b"Transfer-Encoding: chunked\r\n" if chunked
               else f"Content-Length: {total}\r\n".encode())
    piece = b"x" * MIB
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + framing
                     + b"Content-Type: application/json\r\n\r\n")
        for _ in range(total // MIB):
            sock.sendall(f"{MIB:x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed: the rest of the body was never wanted
    reader.join(10)
    sock.close()
    return bytes(answer)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_64_mib_unsigned_webhook_body_is_refused_without_memory_growth(api, chunked):
    for _ in range(3):  # warm up: imports, first requests
        httpx.post(f"{api.base_url}/webhooks/whatsapp", content=b"{}")
    before = api.peak_rss_kib()
    answer = raw_post(api.port, "/webhooks/whatsapp", 64 * MIB, chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    grown = api.peak_rss_kib() - before
    assert grown < ALLOWED_GROWTH_KIB, f"peak RSS grew by {grown} KiB"
    # The server is fine afterwards.
    assert httpx.get(f"{api.base_url}/healthz").status_code == 200


def test_the_admin_login_form_has_a_smaller_limit(api):
    over = httpx.post(f"{api.base_url}/admin/login",
                      data={"username": "admin", "password": "p" * (FORM_LIMIT + 1)})
    assert over.status_code == 413
    # Under the form limit the form is read (and refused for its missing CSRF token) ...
    under = httpx.post(f"{api.base_url}/admin/login", data={"username": "admin"})
    assert under.status_code == 403
    # ... while the same size is fine for a webhook (401: unsigned, but read).
    webhook = httpx.post(f"{api.base_url}/webhooks/whatsapp", content=b"x" * (FORM_LIMIT * 4))
    assert webhook.status_code == 401


def test_a_streamed_body_over_the_limit_is_a_413_even_when_the_route_reads_a_form(api):
    def body() -> Iterator[bytes]:
        yield b"username=admin&password="
        for _ in range(8):
            yield b"p" * 4096

    response = httpx.post(f"{api.base_url}/admin/login", content=body(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_the_limit_follows_the_route():
    limit = BodyLimit(app=None, webhook_bytes=100, other_bytes=10,  # type: ignore[arg-type]
                      prefixes={"/chat/api/": 1000})
    assert limit.limit_for("/webhooks/line") == 100
    assert limit.limit_for("/admin/login") == 10
    assert limit.limit_for("/webhooksX") == 10
    assert limit.limit_for("/chat/api/send") == 1000
