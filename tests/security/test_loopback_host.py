"""Item 10: trust in loopback needs a loopback Host.

A page on any site can point its own name at 127.0.0.1 (DNS rebinding): the browser then
connects from this machine to this machine and lets the page read the answers. The Host header
still names the attacker's domain. /metrics (without METRICS_TOKEN) and the /chat page
(without a sign-in) trusted any loopback peer; they must now refuse such a request as they
refuse a remote one (403, or 401 where signing in would help), while `localhost`, `127.0.0.1`
and `[::1]`, with any port, still work. Before the fix, the rebound requests were answered.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.web.app import create_app
from tests.helpers.api_process import ApiProcess
from tests.helpers.faces import fresh_database, settings_for

LOOPBACK_HOSTS = ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:8080", "[::1]",
                  "[::1]:8080", "LOCALHOST:80"]
REBOUND_HOSTS = ["rebind.attacker.example:8080", "rebind.attacker.example", "testserver",
                 "127.0.0.1.nip.io:8080", "localhost.attacker.example", "[::2]:8080"]


@pytest.fixture()
def redis_url(redis_server) -> Iterator[str]:
    with fresh_database(redis_server) as url:
        yield url


def _client(app, host: str) -> TestClient:
    """A browser on this machine (loopback peer) that asked for `host`."""
    return TestClient(app, base_url=f"http://{host}", client=("127.0.0.1", 42000),
                      follow_redirects=False)


@pytest.mark.e2e
def test_metrics_over_a_real_socket_need_a_loopback_host(redis_url, tmp_path):
    """The real `sealion-bot api` (uvicorn): the rebinding page's request reaches 127.0.0.1
    with its own Host header."""
    api = ApiProcess({"ENVIRONMENT": "test", "REDIS_URL": redis_url,
                      "DATA_DIR": str(tmp_path)}, tmp_path / "api.log").start()
    try:
        url = f"{api.base_url}/metrics"
        assert httpx.get(url).status_code == 200  # Host: 127.0.0.1:PORT
        assert httpx.get(url, headers={"Host": f"localhost:{api.port}"}).status_code == 200
        for host in REBOUND_HOSTS:
            answer = httpx.get(url, headers={"Host": host})
            assert answer.status_code == 403, (host, answer.text)
            assert "sealion_" not in answer.text
    finally:
        api.stop()


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_names_are_still_this_machine(redis_url, tmp_path, host):
    app = create_app(settings_for(redis_url, tmp_path, web_chat=True))
    client = _client(app, host)
    assert client.get("/metrics").status_code == 200
    assert client.get("/chat").status_code == 200
    assert client.get("/chat/api/events").status_code == 200


@pytest.mark.parametrize("host", REBOUND_HOSTS)
def test_a_rebound_host_is_not_this_machine(redis_url, tmp_path, host):
    app = create_app(settings_for(redis_url, tmp_path, web_chat=True))
    client = _client(app, host)
    client.cookies.set("sealion_chat", "a-chat-cookie-of-22ch", path="/chat")
    assert client.get("/metrics").status_code == 403
    assert client.get("/chat").status_code == 403
    assert client.get("/chat/api/events").status_code == 403
    sent = client.post("/chat/api/messages", data={"text": "from another site"})
    assert sent.status_code == 403
    # With the console on, such a browser is treated as remote: it must sign in first.
    console = settings_for(redis_url, tmp_path, web_chat=True,
                           admin_password=SecretStr("a-long-enough-password"))
    client = _client(create_app(console), host)
    answer = client.get("/chat/api/events")
    assert answer.status_code == 401 and "/admin/login" in answer.json()["detail"]
