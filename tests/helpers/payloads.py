"""LINE and WhatsApp webhook bodies for tests, from the recorded payloads in tests/data/."""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"
_ids = itertools.count(int(time.time()) % 100_000 * 1000)


def load(platform: str, name: str) -> dict[str, Any]:
    return json.loads((DATA / platform / f"{name}.json").read_text())


def line_event(name: str, user_id: str, *, reply_token: str | None = None,
               group_id: str | None = None, **message_fields: Any) -> dict[str, Any]:
    """A LINE webhook body holding the fixture's first event, with fresh ids."""
    body = copy.deepcopy(load("line", name))
    event = body["events"][0]
    event["webhookEventId"] = f"01H{uuid.uuid4().hex[:23].upper()}"
    event["timestamp"] = int(time.time() * 1000)
    event.setdefault("deliveryContext", {"isRedelivery": False})
    source = event["source"]
    source["userId"] = user_id
    if group_id is not None:
        source["groupId"] = group_id
    if "replyToken" in event or reply_token:
        event["replyToken"] = reply_token or uuid.uuid4().hex
    if "message" in event:
        event["message"]["id"] = str(next(_ids))
        event["message"].update(message_fields)
    return body


def whatsapp_message(name: str, wa_id: str, **fields: Any) -> dict[str, Any]:
    """A WhatsApp webhook body holding the fixture's messages, from `wa_id`, with fresh ids."""
    body = copy.deepcopy(load("whatsapp", name))
    value = body["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts") or []:
        contact["wa_id"] = wa_id
    for message in value.get("messages") or []:
        message["from"] = wa_id
        message["id"] = f"wamid.TEST{next(_ids)}"
        message["timestamp"] = str(int(time.time()))
        for key, extra in fields.items():
            if isinstance(extra, dict) and isinstance(message.get(key), dict):
                message[key].update(extra)
            else:
                message[key] = extra
    return body
