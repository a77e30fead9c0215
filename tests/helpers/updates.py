"""Telegram updates for tests, from the recorded payloads in tests/data/telegram/."""

from __future__ import annotations

import copy
import itertools
import json
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "telegram"
_update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)
_message_ids = itertools.count(5000)


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def _fresh(name: str, chat_id: int, **message_fields: Any) -> dict[str, Any]:
    update = copy.deepcopy(load(name))
    update["update_id"] = next(_update_ids)
    message = update.get("message") or update.get("edited_message")
    if message is not None:
        message["message_id"] = next(_message_ids)
        message["chat"]["id"] = chat_id
        if message["chat"]["type"] == "private":
            message["from"]["id"] = chat_id
        message.update(message_fields)
    return update


def text_update(chat_id: int, text: str, **fields: Any) -> dict[str, Any]:
    return _fresh("text_private", chat_id, text=text, **fields)


def photo_update(chat_id: int, caption: str | None = "Ini gambar apa?",
                 **fields: Any) -> dict[str, Any]:
    update = _fresh("photo_caption", chat_id, **fields)
    if caption is None:
        update["message"].pop("caption", None)
    else:
        update["message"]["caption"] = caption
    return update


def group_update(chat_id: int, text: str, **fields: Any) -> dict[str, Any]:
    return _fresh("group_text", chat_id, text=text, **fields)


def sticker_update(chat_id: int) -> dict[str, Any]:
    return _fresh("sticker", chat_id)
