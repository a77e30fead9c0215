"""Telegram long polling: `getUpdates` in a loop, for a bot that has no public HTTPS URL.

    getMe, deleteWebhook      check the token; Telegram refuses getUpdates while a webhook is set
    loop:
      getUpdates(offset, timeout=TELEGRAM_POLLING_TIMEOUT_SECONDS, allowed_updates=["message", "callback_query", "message_reaction"])
      each update, in order:  TelegramAdapter.parse(raw) -> accept(messages) -> offsets.save(id+1)

The offset moves past an update only after `accept` returned (the webhook's accept path: dedupe,
pending list, queue). A poller that dies before that gets the update again, from Telegram or
from the saved offset, and the dedupe drops it if it had been accepted: nothing is lost and
nothing is answered twice.

Errors (`PollingError` ends the loop; everything else is retried):

    network error, 5xx, 429      wait and retry: retry_after, else 1, 2, 4 ... BACKOFF_CAP s
    409 "webhook is active"      someone set a webhook: deleteWebhook again, carry on
    409 other getUpdates         another process polls with this token: wait and retry
    accept failed (Redis down)   wait and retry the same update
    update unreadable            logged and skipped (never retried forever)
    401, 404                     PollingError: the token is wrong
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from adapters.base import AdapterError, PayloadError
from adapters.telegram import ALLOWED_UPDATES, TelegramAdapter
from bot.kernel.messages import InboundMessage

log = logging.getLogger(__name__)

#: The longest wait between two tries after errors, in seconds.
BACKOFF_CAP = 60.0
#: Updates asked for per getUpdates call (Telegram's maximum).
BATCH = 100


class PollingError(AdapterError):
    """Polling cannot go on (the token was refused)."""


class TelegramCallError(AdapterError):
    """A Bot API call answered `ok: false` (or not JSON)."""

    def __init__(self, method: str, status: int, description: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {status} {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after


class OffsetStore(Protocol):
    """Where the next update id to ask for is kept across restarts."""

    def load(self) -> int | None: ...

    def save(self, offset: int) -> None: ...


class TelegramPoller:
    """Polls until `stop` is set. `accept` is the blocking accept path; it raises on failure."""

    def __init__(self, adapter: TelegramAdapter, accept: Callable[[list[InboundMessage]], Any],
                 offsets: OffsetStore, *, timeout: int = 50,
                 client: httpx.Client | None = None) -> None:
        settings = adapter.settings
        assert settings.telegram_bot_token is not None
        self.adapter = adapter
        self.accept = accept
        self.offsets = offsets
        self.timeout = timeout
        base = settings.telegram_api_base_url.rstrip("/")
        self._url = f"{base}/bot{settings.telegram_bot_token.get_secret_value()}"
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(10.0, read=timeout + 15.0))
        self._failures = 0
        #: Updates accepted (new or redelivered) since the poller started.
        self.handled = 0

    # --- Bot API calls -------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            response = self._client.post(f"{self._url}/{method}", json=params)
        except httpx.HTTPError as exc:
            # The URL holds the token: say what failed without it.
            raise TelegramCallError(method, 0, f"network error: {type(exc).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            raise TelegramCallError(method, response.status_code, "not JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            answer = answer if isinstance(answer, dict) else {}
            retry = (answer.get("parameters") or {}).get("retry_after")
            raise TelegramCallError(method, int(answer.get("error_code") or response.status_code),
                                    str(answer.get("description") or ""),
                                    float(retry) if isinstance(retry, (int, float)) else None)
        return answer.get("result")

    def start(self) -> str:
        """getMe (the token, the username groups mention) and deleteWebhook."""
        try:
            me = self.call("getMe", {})
        except TelegramCallError as exc:
            if exc.status in (401, 404):
                raise PollingError("Telegram refused TELEGRAM_BOT_TOKEN (getMe answered "
                                   f"{exc.status}): check the token @BotFather gave you") from None
            raise
        self.adapter.username = me.get("username")
        self.call("deleteWebhook", {"drop_pending_updates": False})
        return f"@{self.adapter.username}"

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; retries everything but a refused token."""
        started = False
        while not stop.is_set():
            try:
                if not started:
                    name = self.start()
                    started = True
                    log.info("telegram: polling for %s (timeout %ss)", name, self.timeout)
                self.poll_once(stop)
                self._failures = 0
            except PollingError:
                raise
            except TelegramCallError as exc:
                self._on_error(exc, stop)
            except Exception as exc:  # accept failed (Redis or the broker away): try again
                log.warning("telegram polling: accept failed (%s); retrying",
                            type(exc).__name__)
                self._wait(self._backoff(), stop)
        self._client.close()

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """One getUpdates call and the updates it brought; returns how many were handled."""
        offset = self.offsets.load()
        params: dict[str, Any] = {"timeout": self.timeout, "limit": BATCH,
                                  "allowed_updates": list(ALLOWED_UPDATES)}
        if offset is not None:
            params["offset"] = offset
        updates = self.call("getUpdates", params)
        handled = 0
        for update in updates or []:
            if stop is not None and stop.is_set():
                break  # not accepted, offset not moved: the next run gets it again
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if not isinstance(update_id, int):
                continue
            try:
                messages = self.adapter.parse(json.dumps(update).encode())
            except PayloadError as exc:
                log.warning("telegram: update %s unreadable (%s); skipped", update_id, exc)
                messages = []
            if messages:
                self.accept(messages)
            self.offsets.save(update_id + 1)
            handled += 1
        self.handled += handled
        return handled

    def _on_error(self, exc: TelegramCallError, stop: threading.Event) -> None:
        if exc.status == 409 and "webhook" in exc.description.lower():
            log.warning("telegram: a webhook was set while polling (409); deleting it, since "
                        "TELEGRAM_POLLING is on (turn polling off to use the webhook)")
            try:
                self.call("deleteWebhook", {"drop_pending_updates": False})
                return
            except TelegramCallError as again:
                exc = again
        if exc.status == 409:
            log.warning("telegram: another process is polling with this token (409); "
                        "only one may: retrying")
        elif exc.status in (401, 404):
            raise PollingError(f"Telegram refused the token ({exc.status})") from None
        else:
            log.warning("telegram polling: %s; retrying", exc)
        self._wait(exc.retry_after if exc.retry_after is not None else self._backoff(), stop)

    def _backoff(self) -> float:
        self._failures += 1
        return min(2.0 ** (self._failures - 1), BACKOFF_CAP)

    @staticmethod
    def _wait(seconds: float, stop: threading.Event) -> None:
        stop.wait(min(seconds, BACKOFF_CAP))

    def close(self) -> None:
        self._client.close()
