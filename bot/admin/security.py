"""The console's locks: credentials checked in constant time, a signed session cookie carrying
its CSRF token and a session id, the sessions signed in and not yet signed out (in Redis), and
a growing delay after failed logins from one client address.

A session cookie acts only while both hold: its signature is good (and not older than
SESSION_MAX_AGE), and its session id is in `SessionStore`. Signing out deletes the id, so the
old cookie is worth nothing at once, on every API process."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.kernel.datadir import stored_secret
from bot.kernel.settings import Settings
from storage.keys import KeyBuilder

SESSION_COOKIE = "sealion_admin"
#: Before login there is no session: the login form's CSRF token rides in this cookie instead.
LOGIN_COOKIE = "sealion_admin_login"
SESSION_MAX_AGE = 12 * 3600
LOGIN_MAX_AGE = 3600
#: Shorter passwords leave the console off.
MIN_PASSWORD_LENGTH = 12
#: The generated session-signing key, in DATA_DIR, when ADMIN_SESSION_SECRET is unset.
SESSION_SECRET_FILE = "admin-session-secret"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def session_secret(settings: Settings) -> bytes:
    """ADMIN_SESSION_SECRET, or a random key generated on first use and kept in DATA_DIR.

    Never derived from the password: the anonymous login page hands out a signed cookie, and a
    key that follows from the password would let anyone test guesses offline against it."""
    if settings.admin_session_secret and settings.admin_session_secret.get_secret_value():
        return settings.admin_session_secret.get_secret_value().encode()
    return stored_secret(Path(settings.data_dir) / SESSION_SECRET_FILE)


@dataclass(frozen=True)
class AdminSession:
    username: str
    csrf: str
    issued_at: float
    #: Names the session in `SessionStore`: signing out deletes it there.
    session_id: str


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

    def issue(self, username: str, session_id: str) -> str:
        return self._sessions.dumps({"u": username, "c": secrets.token_urlsafe(32),
                                     "t": time.time(), "e": self._epoch, "s": session_id})

    def read(self, cookie: str | None, username: str) -> AdminSession | None:
        """The session a cookie carries when its signature and age are good; whether it is
        still signed in is `SessionStore.alive`'s to say."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("e") != self._epoch \
                or data.get("u") != username or not data.get("c") \
                or not isinstance(data.get("s"), str) or not data["s"]:
            return None
        return AdminSession(username=data["u"], csrf=data["c"], issued_at=float(data["t"]),
                            session_id=data["s"])

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


class SessionStore:
    """The console sessions signed in and not signed out: one Redis key each
    (`KeyBuilder.admin_session`), living as long as the cookie may (SESSION_MAX_AGE).

    Redis errors propagate from `start` and `end`; `alive` answers False when Redis cannot say
    (a session that cannot be checked does not act)."""

    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()

    def start(self) -> str:
        """A new session's id, recorded as signed in."""
        session_id = secrets.token_urlsafe(24)
        self._redis.set(self._keys.admin_session(session_id), "1", ex=SESSION_MAX_AGE)
        return session_id

    def alive(self, session_id: str) -> bool:
        try:
            return bool(self._redis.exists(self._keys.admin_session(session_id)))
        except redis.RedisError:
            return False

    def end(self, session_id: str) -> None:
        """Sign the session out: its cookie no longer acts, wherever it is presented."""
        self._redis.delete(self._keys.admin_session(session_id))


def csrf_ok(session: AdminSession, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")


class LoginThrottle:
    """After each failed login from a client address, the next attempt from it waits longer:
    `base`, then twice that, and so on up to `maximum` seconds. Attempts made before the wait
    is over are refused without looking at the password. A success clears the address.

    An IPv6 client counts by its /64 (one subscriber's whole range), so rotating addresses in
    it gains nothing; behind a reverse proxy the address is the real client's (FORWARDED_ALLOW_IPS),
    so one stranger's failures never make the admin wait. Kept in this process's memory: with
    several API processes, each keeps its own count."""

    def __init__(self, base: float = 1.0, factor: float = 2.0, maximum: float = 300.0,
                 forget_after: float = 24 * 3600, max_entries: int = 100_000) -> None:
        self.base, self.factor, self.maximum = base, factor, maximum
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._lock = threading.Lock()
        #: client -> (failures, allowed again at, last failure) on the monotonic clock
        self._entries: dict[str, tuple[int, float, float]] = {}

    @staticmethod
    def bucket(client: str) -> str:
        """The unit counted: the address, or the /64 of an IPv6 address."""
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return client
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return client

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again (0 when it may now)."""
        client = self.bucket(client)
        with self._lock:
            entry = self._entries.get(client)
        return max(entry[1] - time.monotonic(), 0.0) if entry else 0.0

    def failures(self, client: str) -> int:
        client = self.bucket(client)
        with self._lock:
            entry = self._entries.get(client)
        return entry[0] if entry else 0

    def failure(self, client: str) -> float:
        """Count a failed attempt; returns the delay imposed before the next one."""
        now = time.monotonic()
        client = self.bucket(client)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._prune(now)
            count = self._entries.get(client, (0, 0.0, 0.0))[0] + 1
            delay = min(self.base * self.factor ** (count - 1), self.maximum)
            self._entries[client] = (count, now + delay, now)
            return delay

    def success(self, client: str) -> None:
        client = self.bucket(client)
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
