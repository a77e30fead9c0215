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
    """A WhatsApp webhook body holding the fixture's messages, from `wa_id` alone, with fresh
    ids. The recorded business-scoped ids are dropped: every test person would otherwise share
    the fixture's BSUID and so be one person (storage/identities.py); tests of the BSUID
    shapes build theirs with `whatsapp_person`."""
    body = copy.deepcopy(load("whatsapp", name))
    value = body["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts") or []:
        contact["wa_id"] = wa_id
        contact.pop("user_id", None)
        contact.pop("parent_user_id", None)
    for message in value.get("messages") or []:
        message["from"] = wa_id
        message.pop("from_user_id", None)
        message.pop("from_parent_user_id", None)
        message["id"] = f"wamid.TEST{next(_ids)}"
        message["timestamp"] = str(int(time.time()))
        for key, extra in fields.items():
            if isinstance(extra, dict) and isinstance(message.get(key), dict):
                message[key].update(extra)
            else:
                message[key] = extra
    return body


def whatsapp_person(text: str, *, phone: str | None = None, bsuid: str | None = None,
                    parent: str | None = None, name: str = "Siti") -> dict[str, Any]:
    """A WhatsApp text webhook body naming its sender by the ids given: phone only (before
    business-scoped ids), phone and BSUID (since April 2026), or BSUID only (a username user
    whose phone is hidden) with a parent BSUID. Shapes: developers.facebook.com/documentation/
    business-messaging/whatsapp/business-scoped-user-ids (`contacts[].user_id`,
    `messages[].from_user_id`, `from_parent_user_id`)."""
    body = copy.deepcopy(load("whatsapp", "text"))
    value = body["entry"][0]["changes"][0]["value"]
    ids = {"wa_id": phone, "user_id": bsuid, "parent_user_id": parent}
    value["contacts"] = [{"profile": {"name": name, **({} if phone else {"username": "@siti"})},
                          **{k: v for k, v in ids.items() if v}}]
    sent = {"from": phone, "from_user_id": bsuid, "from_parent_user_id": parent}
    value["messages"] = [{**{k: v for k, v in sent.items() if v},
                          "id": f"wamid.TEST{next(_ids)}", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}]
    return body


def whatsapp_user_id_changed(previous: str, new: str, *, previous_parent: str | None = None,
                             parent: str | None = None) -> dict[str, Any]:
    """A `system` `user_changed_user_id` webhook body (no contacts array, no phone: Meta's
    changelog of Aug 11 2026 and its system-messages reference)."""
    body = copy.deepcopy(load("whatsapp", "text"))
    value = body["entry"][0]["changes"][0]["value"]
    value.pop("contacts", None)
    system = {"body": f"User changed from {previous} to {new}", "type": "user_changed_user_id",
              "previous_user_id": previous, "user_id": new,
              "previous_parent_user_id": previous_parent, "parent_user_id": parent}
    value["messages"] = [{"id": f"wamid.TEST{next(_ids)}", "timestamp": str(int(time.time())),
                          "type": "system",
                          "system": {k: v for k, v in system.items() if v}}]
    return body
