"""Logging for every process: JSON lines (or text for `sealion-bot dev`), secrets redacted.

Message text never goes to INFO: the pipeline logs ids (conversation, turn, message), counts and
timings. Conversations appear under a pseudonym (`ConversationKey.log_id()`: a keyed hash,
stable within a deployment, so one conversation can be followed without a phone number or
account id in the logs). Libraries that log request URLs (httpx puts the Telegram token in its
URLs) are kept at WARNING; uvicorn's access log loses query strings (admin searches, person ids,
the WhatsApp verify token); and every record passes through `RedactSecrets` whatever its level,
its message, exception text and extra fields alike.

URLs with credentials in them (`https://user:key@host/v1`, `redis://:password@host`, a
`?api_key=` query) are shown through `redact_url` wherever they are printed, logged or returned
(the startup summary, /readyz, error paragraphs); `RedactSecrets` also hides the credentials of
every configured URL in any text a log record carries (an HTTP client's error message).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from bot.kernel.settings import Settings

# httpx logs URLs (the Telegram token is in them); Celery's trace and strategy loggers print
# task arguments and return values (message text) at INFO. Alembic's plugin loader lists its
# plugins at INFO every time a process checks the log's schema (seven lines of noise a command).
_QUIET = ("httpx", "httpcore", "telegram", "urllib3", "aiohttp.access", "celery.redirected",
          "celery.app.trace", "celery.worker.strategy", "alembic.runtime.plugins")
_PAYLOAD_FIELDS = ("args", "kwargs", "return_value")


#: Attributes every LogRecord has; anything else on a record came as `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
#: Until configure_logging runs: a key of this process alone.
_log_id_key = secrets.token_bytes(32)


def log_id_key(settings: Settings) -> bytes:
    """LOG_ID_KEY, or a key derived from the platform secrets every process of a deployment
    shares (so API and workers name a conversation alike, across restarts)."""
    if settings.log_id_key and settings.log_id_key.get_secret_value():
        return settings.log_id_key.get_secret_value().encode()
    material = [value.get_secret_value() for value in (
        settings.telegram_bot_token, settings.line_channel_secret, settings.whatsapp_app_secret)
        if value is not None]
    return hashlib.sha256("\0".join(["sealion-bot log ids", *material]).encode()).digest()


def pseudonym(value: str) -> str:
    """A short keyed hash of `value` (an account or chat id) for the logs."""
    return hmac.new(_log_id_key, value.encode(), hashlib.sha256).hexdigest()[:16]


#: A query parameter whose name contains one of these carries a credential.
_SECRET_QUERY_WORDS = ("key", "token", "secret", "pass", "auth", "sig", "cred")
_HIDDEN = "***"


def redact_url(url: str) -> str:
    """`url` fit to print: the password of its user part, a user part that is a bare token,
    and the values of credential-like query parameters (`api_key`, `token`, `sig`, ...) become
    '***'. Text that is not a URL with a host comes back unchanged; one that cannot be parsed
    loses everything between its scheme and its host."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{_HIDDEN}@{rest.rpartition('@')[2]}" if "@" in rest else url
    netloc = parts.netloc
    if "@" in netloc:
        host = netloc.rpartition("@")[2]
        if password is not None:
            netloc = f"{user}:{_HIDDEN}@{host}" if user else f":{_HIDDEN}@{host}"
        else:
            netloc = f"{_HIDDEN}@{host}"  # a user part alone is usually a token
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(name) for name, _ in pairs):
            query = urlencode([(name, _HIDDEN if _secret_name(name) else value)
                               for name, value in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing hidden: exactly as given (`sqlite:///x` keeps its slashes)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_URL_STOP = frozenset(" \t\r\n\"'<>`")
_URL_TRAILING = ").,;:]}!?"


def redact_urls_in(text: str) -> str:
    """`text` with every URL in it passed through `redact_url` (an error message that quotes
    a server's URL). One pass, no regular expression: linear in the text's length."""
    if "://" not in text:
        return text
    out: list[str] = []
    done = 0  # text[:done] is in `out`
    at = text.find("://")
    while at != -1:
        start = at
        while start > done and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        if start == at:  # no scheme before this "://": not a URL
            at = text.find("://", at + 3)
            continue
        end = at + 3
        while end < len(text) and text[end] not in _URL_STOP:
            end += 1
        url = text[start:end].rstrip(_URL_TRAILING)
        out.append(text[done:start])
        out.append(redact_url(url))
        done = start + len(url)
        at = text.find("://", end)
    out.append(text[done:])
    return "".join(out)


def _secret_name(name: str) -> bool:
    name = name.lower()
    return any(word in name for word in _SECRET_QUERY_WORDS)


def url_credentials(url: str) -> set[str]:
    """The credentials `redact_url` hides in `url`, as written and percent-decoded: what
    must not appear in a log line that quotes the URL in some other shape."""
    found: set[str] = set()
    if "://" not in url:
        return found
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        rest = url.partition("://")[2].partition("/")[0]
        return {rest.rpartition("@")[0]} if "@" in rest else found
    if password:
        found.add(password)
    elif user and "@" in parts.netloc:
        found.add(user)
    found.update(value for name, value in pairs if _secret_name(name) and value)
    return found | {unquote(value) for value in found}


def settings_secrets(settings: Settings) -> set[str]:
    """Every secret the settings hold: the SecretStr values and the credentials inside the
    URL settings (OPENAI_BASE_URL, GUARD_BASE_URL, ASR_BASE_URL, REDIS_URL, DATABASE_URL...)."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, str):
            found.update(url_credentials(value))
    return found


class RedactSecrets(logging.Filter):
    """Replace every configured secret (tokens, passwords, the credentials inside URL
    settings) in a record with '***', and pass every URL in it through `redact_url` (message,
    exception text, stack and extra fields); hide the task payloads Celery attaches.
    `redact(text)` does the same to any text (an error paragraph bound for /readyz)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._secrets = sorted((s for s in settings_secrets(settings) if len(s) >= 6),
                               key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _HIDDEN)
        return redact_urls_in(text)

    def redact_value(self, value: Any) -> Any:
        """`redact` applied to every text inside a JSON-like value (dicts, lists, tuples)."""
        return self._redact_value(value)

    def _redact_value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if depth > 8:
            return value
        if isinstance(value, dict):
            return {k: self._redact_value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._redact_value(v, depth + 1) for v in value)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and any(f in data for f in _PAYLOAD_FIELDS):
            # Celery attaches task payloads (message text) to its records: never write them.
            record.data = {k: ("<hidden>" if k in _PAYLOAD_FIELDS else v)
                           for k, v in data.items()}
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            # Formatted once here, redacted, and kept as text: formatters print exc_text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD:
                setattr(record, name, self._redact_value(value))
        return True


class AccessLogWithoutQuery(logging.Filter):
    """uvicorn's access log without query strings: admin searches (`q=`), person ids
    (`user_id=`) and the WhatsApp verify token live there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(settings: Settings, *, text: bool | None = None) -> None:
    handler = logging.StreamHandler()
    use_text = settings.log_format == "text" if text is None else text
    if use_text:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    handler.addFilter(RedactSecrets(settings))
    global _log_id_key
    _log_id_key = log_id_key(settings)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogWithoutQuery) for f in access.filters):
        access.addFilter(AccessLogWithoutQuery())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
