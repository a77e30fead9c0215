"""`sealion-bot poll` and TELEGRAM_POLLING in `dev`: Telegram updates without a public URL.

Wires the loop in `adapters.telegram_polling` to the webhook's accept path (`bot.intake`) and
the saved offset (`storage.poll_offsets`).
"""

from __future__ import annotations

import logging
import threading

from adapters.telegram import TelegramAdapter
from adapters.telegram_polling import TelegramPoller
from bot.intake import Intake
from bot.messages import Platform
from bot.settings import Settings
from storage.poll_offsets import PollOffsets

log = logging.getLogger(__name__)


def make_poller(settings: Settings, intake: Intake | None = None) -> TelegramPoller:
    if not settings.telegram_enabled:
        raise ValueError("Telegram polling needs TELEGRAM_BOT_TOKEN (from @BotFather)")
    intake = intake or Intake(settings)
    adapter = TelegramAdapter(settings)
    offsets = PollOffsets(intake.redis, Platform.TELEGRAM, adapter.bot_id)
    return TelegramPoller(adapter, intake.accept, offsets,
                          timeout=settings.telegram_polling_timeout_seconds)


def run_polling(settings: Settings, stop: threading.Event) -> None:
    """Poll until `stop` is set (blocking)."""
    intake = Intake(settings)
    try:
        make_poller(settings, intake).run(stop)
    finally:
        intake.close()


def start_polling_thread(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """Polling beside the API in `sealion-bot dev`; set the event to stop it."""
    stop = threading.Event()

    def target() -> None:
        try:
            run_polling(settings, stop)
        except Exception as exc:
            log.error("telegram polling stopped: %s", exc)

    thread = threading.Thread(target=target, name="telegram-polling", daemon=True)
    thread.start()
    return thread, stop
