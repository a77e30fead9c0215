"""The console's locks, over HTTP against the real app (create_app + mount_admin): off without a
password, nothing for an anonymous visitor, CSRF on every POST, hardened cookies, and a growing
delay after failed logins."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from bot.admin import mount_admin, security
from bot.admin.security import SessionCodec
from bot.web.app import create_app
from storage.history import HistoryEntry, RedisHistory
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from tests.helpers.console import PASSWORD, csrf_of, login, settings_for
from tests.helpers.conversation_log import key_of, photo, sqlite_log, turn
from workers.images import make_thumbnail

SECRET_TEXT = "my bank PIN is 4321"


@pytest.fixture()
def seeded(tmp_path) -> Iterator[ConversationLog]:
    conversation_log = sqlite_log(tmp_path / "log.db")
    turn(conversation_log, key_of("telegram", "501"), SECRET_TEXT, "Please never share it.",
         name="Budi", language="id", images=[make_thumbnail(photo())])
    turn(conversation_log, key_of("line", "U77"), "<script>alert(1)</script> hello",
         "<b>hi</b>", name="<img src=x onerror=alert(2)>", language="en")
    yield conversation_log
    conversation_log.close()


@pytest.fixture()
def app(tmp_path, redis_url, seeded):
    settings = settings_for(tmp_path, redis_url)
    application = create_app(settings)
    assert mount_admin(application, settings) is True
    assert mount_admin(application, settings) is True  # a second call changes nothing
    application.state.admin.throttle.base = 0.2
    return application


@pytest.fixture()
def anonymous(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture()
def signed_in(app) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    response = login(client)
    assert response.status_code == 303, response.text
    return client


def test_console_is_off_without_a_password(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url, admin_password=None)
    application = create_app(settings)
    assert mount_admin(application, settings) is False
    client = TestClient(application, follow_redirects=False)
    for path in ("/admin", "/admin/", "/admin/login", "/admin/export.csv", "/admin/images/1",
                 "/admin/conversations/1"):
        assert client.get(path).status_code == 404, path
    assert client.post("/admin/login", data={"username": "admin", "password": ""}) \
        .status_code == 404
    assert client.get("/healthz").status_code == 200


def _admin_routes() -> list[tuple[str, str]]:
    from bot.admin import router

    found = []
    for route in router.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/admin"):
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method in {"HEAD", "OPTIONS"} or path == "/admin/login":
                continue
            url = (path.replace("{conversation_id}", "1").replace("{image_id}", "1")
                   .replace("{fmt}", "csv"))
            found.append((method, url))
    return found


def test_every_admin_route_refuses_an_anonymous_request(app, anonymous, seeded):
    routes = _admin_routes()
    assert {("GET", "/admin"), ("GET", "/admin/conversations/1"), ("GET", "/admin/images/1"),
            ("GET", "/admin/export.csv"), ("GET", "/admin/conversations/1/export.csv"),
            ("GET", "/admin/people/delete"), ("POST", "/admin/people/delete"),
            ("POST", "/admin/logout")} <= set(routes)
    for method, url in routes:
        for suffix in ("", "?platform=telegram&user_id=501"):
            response = anonymous.request(method, url + suffix,
                                         data={"platform": "telegram", "user_id": "501"}
                                         if method == "POST" else None)
            assert response.status_code in {303, 401, 403}, (method, url, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"].startswith("/admin/login"), (method, url)
            assert SECRET_TEXT not in response.text
            assert "sealion_admin=" not in response.headers.get("set-cookie", "")
    # Nothing was deleted by all that.
    assert seeded.person_conversations("telegram", "501")


@pytest.mark.parametrize("case", ["garbage", "other-secret", "other-user", "expired"])
def test_forged_and_expired_sessions_are_refused(app, anonymous, monkeypatch, case):
    if case == "garbage":
        cookie = "eyJ1IjoiYWRtaW4ifQ.forged.signature"
    elif case == "other-secret":
        cookie = SessionCodec(b"not the secret", PASSWORD).issue(
            "admin", app.state.admin.sessions.start())
    elif case == "other-user":
        cookie = app.state.admin.codec.issue("mallory", app.state.admin.sessions.start())
    else:
        cookie = app.state.admin.codec.issue("admin", app.state.admin.sessions.start())
        monkeypatch.setattr(security, "SESSION_MAX_AGE", -1)
    anonymous.cookies.set("sealion_admin", cookie, path="/admin")
    assert anonymous.get("/admin").status_code == 303
    assert anonymous.get("/admin/export.jsonl").status_code == 401


def test_login_sets_a_hardened_cookie(app):
    plain = TestClient(app, follow_redirects=False)
    cookie = login(plain).headers["set-cookie"]
    assert "sealion_admin=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie
    https = TestClient(app, base_url="https://console.example", follow_redirects=False)
    response = login(https)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]
    assert https.get("/admin").status_code == 200


def test_a_new_password_signs_everyone_out(tmp_path, redis_url, seeded, signed_in):
    assert signed_in.get("/admin").status_code == 200
    settings = settings_for(tmp_path, redis_url, admin_password="another password entirely")
    changed = create_app(settings)
    mount_admin(changed, settings)
    again = TestClient(changed, follow_redirects=False, cookies=signed_in.cookies)
    assert again.get("/admin").status_code == 303


def test_a_fixed_session_secret_still_ends_sessions_on_a_new_password(tmp_path, redis_url,
                                                                      seeded):
    first = settings_for(tmp_path, redis_url, admin_session_secret="s" * 40)
    app1 = create_app(first)
    mount_admin(app1, first)
    client = TestClient(app1, follow_redirects=False)
    assert login(client).status_code == 303
    second = settings_for(tmp_path, redis_url, admin_session_secret="s" * 40,
                          admin_password="rotated password")
    app2 = create_app(second)
    mount_admin(app2, second)
    assert TestClient(app2, follow_redirects=False, cookies=client.cookies) \
        .get("/admin").status_code == 303
    third = settings_for(tmp_path, redis_url, admin_session_secret="s" * 40)
    app3 = create_app(third)
    mount_admin(app3, third)
    assert TestClient(app3, follow_redirects=False, cookies=client.cookies) \
        .get("/admin").status_code == 200


def test_the_login_form_needs_its_csrf_token(anonymous):
    for data in ({"username": "admin", "password": PASSWORD},
                 {"username": "admin", "password": PASSWORD, "csrf": "forged"}):
        anonymous.get("/admin/login")
        response = anonymous.post("/admin/login", data=data)
        assert response.status_code == 403
        assert "sealion_admin=" not in response.headers.get("set-cookie", "")


def test_posts_without_their_csrf_token_are_refused(signed_in, seeded):
    form = {"platform": "telegram", "user_id": "501"}
    assert signed_in.post("/admin/people/delete", data=form).status_code == 403
    assert signed_in.post("/admin/people/delete", data={**form, "csrf": "wrong"}) \
        .status_code == 403
    page = signed_in.get("/admin/people/delete", params=form)
    assert page.status_code == 200 and "Budi" in page.text
    token = csrf_of(page.text)
    cross = signed_in.post("/admin/people/delete", data={**form, "csrf": token},
                           headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert seeded.person_conversations("telegram", "501")  # still there
    done = signed_in.post("/admin/people/delete", data={**form, "csrf": token},
                          headers={"Origin": "http://testserver"})
    assert done.status_code == 303 and done.headers["location"].startswith("/admin?deleted=")
    assert seeded.person_conversations("telegram", "501") == []

    assert signed_in.post("/admin/logout").status_code == 403
    assert signed_in.get("/admin").status_code == 200
    out = signed_in.post("/admin/logout", data={"csrf": token})
    assert out.status_code == 303
    assert signed_in.get("/admin").status_code == 303


def test_failed_logins_make_the_next_attempt_wait_longer(app):
    throttle = app.state.admin.throttle
    client = TestClient(app, follow_redirects=False, client=("198.51.100.7", 40000))
    waits = []
    for attempt in range(3):
        response = login(client, password=f"guess {attempt}")
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert int(response.headers["retry-after"]) >= 1
        waits.append(throttle.wait("198.51.100.7"))
        # Too early: refused without looking at the password, even the right one.
        early = login(client)
        assert early.status_code == 429 and "Too many failed attempts" in early.text
        assert "sealion_admin=" not in early.headers.get("set-cookie", "")
        time.sleep(throttle.wait("198.51.100.7") + 0.05)
    assert waits[0] < waits[1] < waits[2]
    assert waits[1] == pytest.approx(2 * waits[0], abs=0.1)
    assert waits[2] == pytest.approx(4 * waits[0], abs=0.1)
    assert throttle.failures("198.51.100.7") == 3
    # Another address is not slowed down by this one.
    other = TestClient(app, follow_redirects=False, client=("203.0.113.9", 40000))
    assert login(other).status_code == 303
    # After the wait, the right password works and the count starts over.
    assert login(client).status_code == 303
    assert throttle.failures("198.51.100.7") == 0


def test_a_wrong_username_fails_like_a_wrong_password(anonymous):
    assert login(anonymous, username="root").status_code == 401


def test_no_open_redirect_after_login(app):
    for target in ("//evil.example/admin", "https://evil.example/", "/elsewhere",
                   "/admin\\@evil.example"):
        client = TestClient(app, follow_redirects=False)
        assert login(client, next_url=target).headers["location"] == "/admin"
    client = TestClient(app, follow_redirects=False)
    assert login(client, next_url="/admin/conversations/1").headers["location"] == \
        "/admin/conversations/1"


def test_anonymous_visit_comes_back_after_login(anonymous):
    response = anonymous.get("/admin/conversations/1?before=5")
    assert response.headers["location"] == "/admin/login?next=/admin/conversations/1%3Fbefore%3D5"


def test_security_headers_and_no_caching(signed_in):
    for path in ("/admin", "/admin/conversations/1", "/admin/export.jsonl", "/admin/login"):
        response = signed_in.get(path)
        assert response.status_code == (303 if path == "/admin/login" else 200), path
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


def test_user_text_is_escaped(signed_in):
    page = signed_in.get("/admin")
    assert "<img src=x onerror" not in page.text and "&lt;img src=x onerror" in page.text
    thread = signed_in.get("/admin/conversations/2")
    assert "<script>alert(1)</script>" not in thread.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread.text


def test_pages_exports_and_images(signed_in):
    page = signed_in.get("/admin", params={"q": "PIN"})
    assert page.status_code == 200 and "Budi" in page.text and "U77" not in page.text
    line_only = signed_in.get("/admin", params={"platform": "line"})
    assert line_only.text.count('class="conversation"') == 1
    thread = signed_in.get("/admin/conversations/1")
    assert SECRET_TEXT in thread.text
    image_id = re.search(r'src="/admin/images/(\d+)"', thread.text).group(1)
    picture = signed_in.get(f"/admin/images/{image_id}")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:2] == b"\xff\xd8"
    assert signed_in.get("/admin/images/999").status_code == 404
    assert signed_in.get("/admin/conversations/999").status_code == 404

    jsonl = signed_in.get("/admin/conversations/1/export.jsonl")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in jsonl.headers["content-disposition"]
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["direction"] for r in rows] == ["in", "out"] and rows[0]["text"] == SECRET_TEXT
    csv_text = signed_in.get("/admin/export.csv", params={"platform": "line"})
    assert csv_text.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_text.text.lstrip("\ufeff"))))
    assert table and {(r["platform"], r["user_id"]) for r in table} == {("line", "U77")}
    assert signed_in.get("/admin/export.xml").status_code == 404


def test_delete_forgets_the_person_in_redis_too(app, signed_in, seeded, redis_url):
    client = redis.Redis.from_url(redis_url)
    settings = app.state.settings
    history = RedisHistory(client, ttl=settings.history_ttl_seconds,
                           max_turns=settings.history_max_turns)
    keys = KeyBuilder()
    budi = key_of("telegram", "501")
    not_logged = key_of("telegram", "501", bot="4242")  # only in Redis: still found
    other = key_of("telegram", "502")
    for key in (budi, not_logged, other):
        image_id = history.save_image(key, b"jpeg")
        history.append(key, HistoryEntry(role="user", text="hi", image_ids=(image_id,)))
        client.set(keys.language(key), "id")
        client.set(keys.language_pin(key), "id")
    client.rpush(keys.pending(budi), "{}")
    page = signed_in.get("/admin/people/delete", params={"platform": "telegram",
                                                         "user_id": "501"})
    assert "not in the log" in page.text
    response = signed_in.post("/admin/people/delete", data={
        "platform": "telegram", "user_id": "501", "csrf": csrf_of(page.text)})
    assert response.status_code == 303
    for key in (budi, not_logged):
        assert client.keys(keys.conversation(key, "*")) == []
    # history, image, the conversation's image set, lang, pin
    assert len(client.keys(keys.conversation(other, "*"))) == 5
    notice = signed_in.get(response.headers["location"])
    assert "Deleted the data of" in notice.text and "telegram:501" in notice.text
    client.close()


def test_an_unmigrated_database_says_what_to_do(tmp_path, redis_url):
    settings = settings_for(tmp_path, redis_url, database_url=f"sqlite:///{tmp_path / 'new.db'}")
    application = create_app(settings)
    mount_admin(application, settings)
    client = TestClient(application, follow_redirects=False)
    assert login(client).status_code == 303
    response = client.get("/admin")
    assert response.status_code == 503 and "sealion-bot migrate" in response.text
