"""The console's locks: credentials checked in constant time, a signed session cookie carrying
its CSRF token, and a growing delay after failed logins from one client address."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.settings import Settings

SESSION_COOKIE = "sealion_admin"
#: Before login there is no session: the login form's CSRF token rides in this cookie instead.
LOGIN_COOKIE = "sealion_admin_login"
SESSION_MAX_AGE = 12 * 3600
LOGIN_MAX_AGE = 3600


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def session_secret(settings: Settings) -> bytes:
    """ADMIN_SESSION_SECRET, or a key derived from ADMIN_PASSWORD (PBKDF2-HMAC-SHA256, so a
    stolen cookie is no cheap oracle for the password)."""
    if settings.admin_session_secret and settings.admin_session_secret.get_secret_value():
        return settings.admin_session_secret.get_secret_value().encode()
    assert settings.admin_password is not None
    return hashlib.pbkdf2_hmac("sha256", settings.admin_password.get_secret_value().encode(),
                               b"sealion-bot admin session v1", 100_000)


@dataclass(frozen=True)
class AdminSession:
    username: str
    csrf: str
    issued_at: float


class Credentials:
    """The one operator account; both fields compared in constant time."""

    def __init__(self, username: str, password: str) -> None:
        self._username = _digest(username)
        self._password = _digest(password)
        self.username = username

    def check(self, username: str, password: str) -> bool:
        # `&`, not `and`: both comparisons always run.
        return bool(hmac.compare_digest(_digest(username), self._username)
                    & hmac.compare_digest(_digest(password), self._password))


class SessionCodec:
    """Signed (not encrypted) cookies: the session holds a username and a CSRF token only."""

    def __init__(self, secret: bytes, password: str) -> None:
        self._sessions = URLSafeTimedSerializer(secret, salt="sealion-admin-session")
        self._login = URLSafeTimedSerializer(secret, salt="sealion-admin-login")
        # A changed ADMIN_PASSWORD ends every session, even under a fixed ADMIN_SESSION_SECRET.
        self._epoch = hmac.new(secret, password.encode(), hashlib.sha256).hexdigest()[:16]

    def issue(self, username: str) -> str:
        return self._sessions.dumps({"u": username, "c": secrets.token_urlsafe(32),
                                     "t": time.time(), "e": self._epoch})

    def read(self, cookie: str | None, username: str) -> AdminSession | None:
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("e") != self._epoch \
                or data.get("u") != username or not data.get("c"):
            return None
        return AdminSession(username=data["u"], csrf=data["c"], issued_at=float(data["t"]))

    def login_token(self) -> tuple[str, str]:
        """A fresh CSRF token for the login form and the signed cookie that vouches for it."""
        token = secrets.token_urlsafe(32)
        return token, self._login.dumps(token)

    def check_login_token(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        try:
            expected = self._login.loads(cookie, max_age=LOGIN_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, token)


def csrf_ok(session: AdminSession, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")


class LoginThrottle:
    """After each failed login from a client address, the next attempt from it waits longer:
    `base`, then twice that, and so on up to `maximum` seconds. Attempts made before the wait
    is over are refused without looking at the password. A success clears the address.

    Kept in this process's memory: with several API processes, each keeps its own count."""

    def __init__(self, base: float = 1.0, factor: float = 2.0, maximum: float = 300.0,
                 forget_after: float = 24 * 3600, max_entries: int = 100_000) -> None:
        self.base, self.factor, self.maximum = base, factor, maximum
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._lock = threading.Lock()
        #: client -> (failures, allowed again at, last failure) on the monotonic clock
        self._entries: dict[str, tuple[int, float, float]] = {}

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again (0 when it may now)."""
        with self._lock:
            entry = self._entries.get(client)
        return max(entry[1] - time.monotonic(), 0.0) if entry else 0.0

    def failures(self, client: str) -> int:
        with self._lock:
            entry = self._entries.get(client)
        return entry[0] if entry else 0

    def failure(self, client: str) -> float:
        """Count a failed attempt; returns the delay imposed before the next one."""
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._prune(now)
            count = self._entries.get(client, (0, 0.0, 0.0))[0] + 1
            delay = min(self.base * self.factor ** (count - 1), self.maximum)
            self._entries[client] = (count, now + delay, now)
            return delay

    def success(self, client: str) -> None:
        with self._lock:
            self._entries.pop(client, None)

    def _prune(self, now: float) -> None:
        stale = [c for c, (_, _, last) in self._entries.items() if now - last > self.forget_after]
        for client in stale:
            del self._entries[client]
        if len(self._entries) >= self.max_entries:  # still full: forget the oldest half
            oldest = sorted(self._entries, key=lambda c: self._entries[c][2])
            for client in oldest[: len(oldest) // 2]:
                del self._entries[client]
