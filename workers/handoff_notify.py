"""Telling operators that a person asked for a human (hand-off, issue 23), best effort.

Two optional channels (bot/kernel/settings.py):

- HANDOFF_NOTIFY_TELEGRAM_CHAT_ID: a message to a Telegram chat of operators, through the same
  bot (TELEGRAM_BOT_TOKEN);
- HANDOFF_NOTIFY_URL: a POST of a small JSON body, signed: ``X-Sealion-Timestamp: <unix>`` and
  ``X-Sealion-Signature: sha256=<hex HMAC-SHA256(HANDOFF_NOTIFY_SECRET, "<timestamp>.<body>")>``
  (the timestamp lets the receiver refuse replays).

Neither carries the person's words, name or id: only the platform, the language, the time and
where to look (/admin/handoffs). Every request has a short timeout and follows no redirect; it
runs on a thread of its own, so a slow receiver never delays a turn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time

import httpx

from bot.kernel.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=3.0)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class HandoffNotifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def enabled(self) -> bool:
        s = self._settings
        return bool(s.handoff_notify_url or (s.handoff_notify_telegram_chat_id
                                             and s.telegram_enabled))

    def requested(self, platform: str, language: str) -> threading.Thread | None:
        """Tell the operators, on a thread of its own (returned, for tests to join)."""
        if not self.enabled:
            return None
        thread = threading.Thread(target=self.send, args=(platform, language, time.time()),
                                  name="handoff-notify", daemon=True)
        thread.start()
        return thread

    def send(self, platform: str, language: str, at: float) -> None:
        s = self._settings
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            if s.handoff_notify_telegram_chat_id and s.telegram_bot_token:
                token = s.telegram_bot_token.get_secret_value()
                try:
                    client.post(f"{s.telegram_api_base_url}/bot{token}/sendMessage", json={
                        "chat_id": s.handoff_notify_telegram_chat_id,
                        "text": f"🙋 A person asked for a human · {platform} · {language} · "
                                "/admin/handoffs"}).raise_for_status()
                except httpx.HTTPError as exc:
                    log.warning("hand-off notice to Telegram not sent: %s", type(exc).__name__)
            if s.handoff_notify_url and s.handoff_notify_secret:
                stamp = str(int(at))
                body = json.dumps({
                    "event": "handoff.requested", "platform": platform, "language": language,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                    "path": "/admin/handoffs"}, separators=(",", ":")).encode()
                try:
                    client.post(s.handoff_notify_url, content=body, headers={
                        "Content-Type": "application/json", "X-Sealion-Timestamp": stamp,
                        "X-Sealion-Signature": signature(
                            s.handoff_notify_secret.get_secret_value(), stamp, body),
                    }).raise_for_status()
                except httpx.HTTPError as exc:
                    log.warning("hand-off notice to HANDOFF_NOTIFY_URL not sent: %s",
                                type(exc).__name__)
