"""Item 9: signing out of the console ends the session on the server.

The session cookie is signed and lives 12 h; before the fix, "sign out" only asked the browser
to forget it, so a copy of the cookie (a shared computer, a proxy log, a stolen backup) kept
acting for the rest of the 12 h. Now the cookie names a session recorded in Redis, and signing
out deletes it: the old cookie is refused at once, by every API process, on the console and on
the /chat page it opens to remote browsers. Other sessions are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from bot.admin import mount_admin
from bot.admin.security import SESSION_COOKIE, SESSION_MAX_AGE
from bot.web.app import create_app
from tests.helpers.console import PASSWORD, csrf_of, login
from tests.helpers.faces import fresh_database, settings_for


@pytest.fixture()
def redis_url(redis_server) -> Iterator[str]:
    with fresh_database(redis_server) as url:
        yield url


@pytest.fixture()
def settings(redis_url, tmp_path):
    from storage.log import upgrade_database

    values = settings_for(redis_url, tmp_path, admin_password=PASSWORD, web_chat=True)
    upgrade_database(values.database_url)
    return values


def _app(settings):
    app = create_app(settings)
    assert mount_admin(app, settings)
    return app


def _remote(app, cookie: str | None = None) -> TestClient:
    """A browser elsewhere (the console's users are remote), carrying `cookie` if given."""
    client = TestClient(app, base_url="https://console.example", client=("203.0.113.7", 43000),
                        follow_redirects=False)
    if cookie is not None:
        client.cookies.set(SESSION_COOKIE, cookie, domain="console.example", path="/")
    return client


def _signed_in(app) -> tuple[TestClient, str]:
    client = _remote(app)
    assert login(client).status_code == 303
    return client, client.cookies[SESSION_COOKIE]


def _acts(app, cookie: str) -> bool:
    """Whether the cookie opens the console's pages, its exports and the web chat."""
    client = _remote(app, cookie)
    page = client.get("/admin")
    export = client.get("/admin/export.csv")
    chat = client.get("/chat/api/events",
                      headers={"Cookie": f"{SESSION_COOKIE}={cookie}; "
                                         "sealion_chat=a-chat-cookie-of-22ch"})
    results = {page.status_code == 200, export.status_code == 200, chat.status_code == 200}
    assert len(results) == 1, (page.status_code, export.status_code, chat.status_code)
    if not page.status_code == 200:
        assert page.headers["location"].startswith("/admin/login")
        assert export.status_code == 401 and chat.status_code == 401
    return results.pop()


def test_a_signed_out_cookie_no_longer_acts(settings, redis_url):
    app = _app(settings)
    browser, cookie = _signed_in(app)
    other_browser, other_cookie = _signed_in(app)
    assert _acts(app, cookie) and _acts(app, other_cookie)

    token = csrf_of(browser.get("/admin").text)
    out = browser.post("/admin/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"

    # The old cookie, replayed: refused here and by another API process on the same Redis.
    assert not _acts(app, cookie)
    assert not _acts(_app(settings), cookie)
    # Signing out ended that session only.
    assert _acts(app, other_cookie)
    # And signing in again starts a new one.
    _, again = _signed_in(app)
    assert again != cookie and _acts(app, again)


def test_a_session_is_recorded_for_its_lifetime_only(settings, redis_url):
    app = _app(settings)
    _, cookie = _signed_in(app)
    client = redis.Redis.from_url(redis_url)
    try:
        [name] = list(client.scan_iter(match="sealion:admin:session:*"))
        assert 0 < client.ttl(name) <= SESSION_MAX_AGE
        # The record gone (expired, or deleted by a sign-out elsewhere): the cookie is dead.
        client.delete(name)
    finally:
        client.close()
    assert not _acts(app, cookie)
