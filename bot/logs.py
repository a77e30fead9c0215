"""Logging for every process: JSON lines (or text for `sealion-bot dev`), secrets redacted.

Message text never goes to INFO: the pipeline logs ids (conversation, turn, message), counts and
timings. Conversations appear under a pseudonym (`ConversationKey.log_id()`: a keyed hash,
stable within a deployment, so one conversation can be followed without a phone number or
account id in the logs). Libraries that log request URLs (httpx puts the Telegram token in its
URLs) are kept at WARNING; uvicorn's access log loses query strings (admin searches, person ids,
the WhatsApp verify token); and every record passes through `RedactSecrets` whatever its level,
its message, exception text and extra fields alike.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from bot.settings import Settings

# httpx logs URLs (the Telegram token is in them); Celery's trace and strategy loggers print
# task arguments and return values (message text) at INFO.
_QUIET = ("httpx", "httpcore", "telegram", "urllib3", "aiohttp.access", "celery.redirected",
          "celery.app.trace", "celery.worker.strategy")
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


class RedactSecrets(logging.Filter):
    """Replace every configured secret (tokens, passwords) in a record with '***' (message,
    exception text, stack and extra fields), and hide the task payloads Celery attaches."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._secrets = sorted(
            {value.get_secret_value() for value in (getattr(settings, name)
                                                     for name in type(settings).model_fields)
             if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 6},
            key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

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
        if not self._secrets:
            return True
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
