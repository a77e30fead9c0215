"""Logging for every process: JSON lines (or text for `sealion-bot dev`), secrets redacted.

Message text never goes to INFO: the pipeline logs ids (conversation, turn, message), counts and
timings. Libraries that log request URLs (httpx puts the Telegram token in its URLs) are kept at
WARNING, and every record passes through `RedactSecrets` whatever its level.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from bot.settings import Settings

# httpx logs URLs (the Telegram token is in them); Celery's trace and strategy loggers print
# task arguments and return values (message text) at INFO.
_QUIET = ("httpx", "httpcore", "telegram", "urllib3", "aiohttp.access", "celery.redirected",
          "celery.app.trace", "celery.worker.strategy")
_PAYLOAD_FIELDS = ("args", "kwargs", "return_value")


class RedactSecrets(logging.Filter):
    """Replace every configured secret (tokens, passwords) in a record with '***', and hide
    the task payloads Celery attaches to its records."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._secrets = sorted(
            {value.get_secret_value() for value in (getattr(settings, name)
                                                     for name in type(settings).model_fields)
             if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 6},
            key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and any(f in data for f in _PAYLOAD_FIELDS):
            # Celery attaches task payloads (message text) to its records: never write them.
            record.data = {k: ("<hidden>" if k in _PAYLOAD_FIELDS else v)
                           for k, v in data.items()}
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
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
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
