"""Behind the reverse proxy (issue 12, holes 8 and 12): a real `sealion-bot api` process with
FORWARDED_ALLOW_IPS, and requests arriving as the proxy sends them (from its address, with
X-Forwarded-For, X-Forwarded-Proto: https and the public Host). Cookies keep `Secure`, the
origin check accepts the public origin, one stranger's failures do not lock the admin out, and
/metrics is not served through the proxy. A proxy that is not trusted changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from storage.log import upgrade_database
from tests.helpers.api_process import ApiProcess

PASSWORD = "correct horse battery staple"
PUBLIC = "bot.example.org"


def proxied(client_ip: str) -> dict[str, str]:
    """What Caddy adds to a request it forwards from `client_ip` over HTTPS."""
    return {"Host": PUBLIC, "X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": PUBLIC}


def start(tmp_path_factory, redis_server, trusted: str) -> ApiProcess:
    home = tmp_path_factory.mktemp("proxy")
    database_url = f"sqlite:///{home / 'log.db'}"
    upgrade_database(database_url)
    return ApiProcess({
        "ENVIRONMENT": "test", "REDIS_URL": f"{redis_server.url[:-2]}/0", "DATA_DIR": str(home),
        "DATABASE_URL": database_url, "ADMIN_PASSWORD": PASSWORD,
        "FORWARDED_ALLOW_IPS": trusted,
    }, home / "api.log").start()


@pytest.fixture(scope="module")
def api(tmp_path_factory, redis_server) -> Iterator[ApiProcess]:
    process = start(tmp_path_factory, redis_server, "127.0.0.1")
    yield process
    process.stop()


def cookies_of(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


def login(api: ApiProcess, client_ip: str, password: str) -> httpx.Response:
    # Secure cookies are never sent back over the test's plain http: carry them by hand.
    page = httpx.get(f"{api.base_url}/admin/login", headers=proxied(client_ip))
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    jar = cookies_of(page)
    login_cookie = next(c for name, c in jar.items() if name == "sealion_admin_login")
    return httpx.post(f"{api.base_url}/admin/login", headers={
        **proxied(client_ip),
        "Cookie": f"sealion_admin_login={login_cookie['sealion_admin_login'].value}",
        "Origin": f"https://{PUBLIC}",
    }, data={"username": "admin", "password": password, "csrf": token, "next": "/admin"})


def test_cookies_are_secure_behind_the_proxy(api):
    page = httpx.get(f"{api.base_url}/admin/login", headers=proxied("198.51.100.9"))
    [cookie] = cookies_of(page).values()
    assert cookie["sealion_admin_login"]["secure"]


def test_a_strangers_failures_do_not_lock_the_admin_out(api):
    failed = login(api, "203.0.113.7", "a wrong guess at the password")
    assert failed.status_code == 401 and int(failed.headers["Retry-After"]) >= 1  # it waits
    response = login(api, "198.51.100.9", PASSWORD)  # the admin, from elsewhere, does not
    assert response.status_code == 303, response.text
    session = cookies_of(response)["sealion_admin"]["sealion_admin"]
    assert session["secure"] and session["httponly"]
    assert "203.0.113.7" in api.log()  # the log names the real client, not the proxy


def test_deleting_a_person_passes_the_origin_check_behind_the_proxy(api):
    response = login(api, "198.51.100.10", PASSWORD)
    session = cookies_of(response)["sealion_admin"]["sealion_admin"].value
    headers = {**proxied("198.51.100.10"), "Cookie": f"sealion_admin={session}"}
    page = httpx.get(f"{api.base_url}/admin/people/delete",
                     params={"platform": "telegram", "user_id": "proxy-test-user"},
                     headers=headers)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    deleted = httpx.post(f"{api.base_url}/admin/people/delete", headers={
        **headers, "Origin": f"https://{PUBLIC}"},
        data={"platform": "telegram", "user_id": "proxy-test-user", "csrf": token})
    assert deleted.status_code == 303, deleted.text
    # Another origin is still refused.
    forged = httpx.post(f"{api.base_url}/admin/people/delete", headers={
        **headers, "Origin": "https://evil.example"},
        data={"platform": "telegram", "user_id": "proxy-test-user", "csrf": token})
    assert forged.status_code == 403


def test_metrics_are_not_served_through_the_proxy(api):
    assert httpx.get(f"{api.base_url}/metrics",
                     headers=proxied("198.51.100.9")).status_code == 403
    assert httpx.get(f"{api.base_url}/metrics").status_code == 200  # on this machine


@pytest.mark.e2e
def test_an_untrusted_proxy_is_not_believed(tmp_path_factory, redis_server):
    process = start(tmp_path_factory, redis_server, "10.9.9.9")
    try:
        page = httpx.get(f"{process.base_url}/admin/login", headers=proxied("198.51.100.9"))
        [cookie] = cookies_of(page).values()
        assert not cookie["sealion_admin_login"]["secure"]  # the scheme stays http
    finally:
        process.stop()
