"""`sealion-bot poll` and TELEGRAM_POLLING in `dev`: Telegram updates without a public URL.

Wires the loop in `adapters.telegram_polling` to the webhook's accept path (`workers.intake`) and
the saved offset (`storage.poll_offsets`), both from the composition root.
"""

from __future__ import annotations

import logging
import threading
from typing import cast

from adapters.telegram import TelegramAdapter
from adapters.telegram_polling import TelegramPoller
from bot.composition import Services
from bot.kernel.messages import Platform

log = logging.getLogger(__name__)


def make_poller(services: Services) -> TelegramPoller:
    settings = services.settings
    if not settings.telegram_enabled:
        raise ValueError("Telegram polling needs TELEGRAM_BOT_TOKEN (from @BotFather)")
    adapter = cast(TelegramAdapter, services.new_adapter(Platform.TELEGRAM))
    offsets = services.poll_offsets(Platform.TELEGRAM, adapter.bot_id)
    return TelegramPoller(adapter, services.intake.accept, offsets,
                          timeout=settings.telegram_polling_timeout_seconds)


def run_polling(services: Services, stop: threading.Event) -> None:
    """Poll until `stop` is set (blocking)."""
    make_poller(services).run(stop)


def start_polling_thread(services: Services) -> tuple[threading.Thread, threading.Event]:
    """Polling beside the API in `sealion-bot dev`; set the event to stop it."""
    stop = threading.Event()

    def target() -> None:
        try:
            run_polling(services, stop)
        except Exception as exc:
            log.error("telegram polling stopped: %s", exc)

    thread = threading.Thread(target=target, name="telegram-polling", daemon=True)
    thread.start()
    return thread, stop
