"""The admin console gives an anonymous visitor nothing that verifies a password guess, and stays
off with a weak password (issue 12, hole 7), over HTTP against the real app."""

from __future__ import annotations

import hashlib
import logging
import os
import stat

import pytest
from fastapi.testclient import TestClient
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.admin.security import LOGIN_COOKIE, SESSION_SECRET_FILE, LoginThrottle
from bot.kernel.settings import Settings
from bot.web.app import create_app

PASSWORD = "correct horse battery staple"


def make_app(tmp_path, data_dir, **overrides):
    values = {"_env_file": None, "environment": "test", "redis_url": "redis://127.0.0.1:9/0",
              "database_url": f"sqlite:///{tmp_path / 'log.db'}", "data_dir": str(data_dir),
              "admin_password": PASSWORD, **overrides}
    return create_app(Settings(**values))


def login_cookie(app) -> str:
    page = TestClient(app).get("/admin/login")
    assert page.status_code == 200
    return page.cookies[LOGIN_COOKIE]


def password_keys(password: str) -> list[bytes]:
    """Every key an attacker could compute from a password guess (the old derivation too)."""
    return [password.encode(), hashlib.sha256(password.encode()).digest(),
            hashlib.pbkdf2_hmac("sha256", password.encode(), b"sealion-bot admin session v1",
                                100_000)]


def test_the_anonymous_login_cookie_verifies_no_password_guess(tmp_path):
    cookie = login_cookie(make_app(tmp_path, tmp_path / "data"))
    for key in password_keys(PASSWORD):  # even the right guess does not check out
        with pytest.raises(BadSignature):
            URLSafeTimedSerializer(key, salt="sealion-admin-login").loads(cookie)


def test_the_generated_secret_is_random_private_and_kept(tmp_path):
    first = make_app(tmp_path, tmp_path / "one")
    path = tmp_path / "one" / SESSION_SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    # Same password, another deployment: another key (the password does not decide it) ...
    other = make_app(tmp_path, tmp_path / "two")
    assert (tmp_path / "two" / SESSION_SECRET_FILE).read_text() != path.read_text()
    assert not other.state.admin.codec.check_login_token(login_cookie(first), "x")
    # ... and a restart keeps it, so sessions survive.
    again = make_app(tmp_path, tmp_path / "one")
    client = TestClient(first)
    client.get("/admin/login")
    token, cookie = first.state.admin.codec.login_token()
    assert again.state.admin.codec.check_login_token(cookie, token)


def test_a_configured_session_secret_is_used_and_nothing_is_written(tmp_path):
    app = make_app(tmp_path, tmp_path / "data", admin_session_secret="s" * 40)
    assert app.state.admin is not None
    assert not (tmp_path / "data" / SESSION_SECRET_FILE).exists()


@pytest.mark.parametrize("password", ["pw", "eleven char"])
def test_a_short_password_leaves_the_console_off_with_a_message(tmp_path, caplog, password):
    with caplog.at_level(logging.ERROR, logger="bot.admin"):
        app = make_app(tmp_path, tmp_path / "data", admin_password=password)
    assert TestClient(app).get("/admin/login").status_code == 404
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("bot.admin")]
    assert any("at least 12" in message for message in messages), messages
    assert not any(password in message for message in messages)  # never the password itself


def test_twelve_characters_are_enough(tmp_path):
    app = make_app(tmp_path, tmp_path / "data", admin_password="twelve chars")
    assert TestClient(app).get("/admin/login").status_code == 200


def test_one_address_failing_never_locks_out_another():
    throttle = LoginThrottle(base=60)
    for _ in range(5):
        throttle.failure("203.0.113.7")
    assert throttle.wait("203.0.113.7") > 0
    assert throttle.wait("198.51.100.9") == 0


def test_an_ipv6_client_counts_by_its_64():
    throttle = LoginThrottle(base=60)
    throttle.failure("2001:db8:1:2::1")
    assert throttle.wait("2001:db8:1:2:ffff::9") > 0  # same subscriber, another address
    assert throttle.wait("2001:db8:1:3::1") == 0
