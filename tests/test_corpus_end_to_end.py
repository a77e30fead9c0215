"""Every recorded payload of the corpus (tests/data/<platform>/corpus/<source>/, other projects'
fixtures: see each PROVENANCE.md) through the real webhook, a real Redis and one worker process.

Per platform, one batch: each payload is posted, signed, as its own person and conversation (only
ids, tokens and timestamps are rewritten, so no two files meet in one turn or one dedupe key; the
shapes are the upstream ones). Every post is answered 2xx (the few payloads that are invalid by
construction, listed in their PROVENANCE.md, 400). The kinds we answer (docs/platforms.md: text,
photos, voice, a greeting for follow/join, a polite note for stickers, files, locations...) get
exactly one reply; everything else is silence. Silence is proven, not waited for: a payload the
webhook did not accept left no dedupe key when it was answered 200, so no turn can ever answer it;
the replies are counted once the service is idle (no conversation left in `sealion:active`).
LINE's bodies go in three batches (each SDK's whole-file body waits for the single events before
it to be answered), so one worker on a small machine keeps within its turn time limits.
No log line of the API or the worker carries a traceback or an ERROR.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.kernel.messages import Platform
from storage.keys import KeyBuilder
from tests.helpers.audio import line_audio, voice_note
from tests.helpers.documents import text_pdf
from tests.helpers.waiting import wait_until
from tests.test_telegram_end_to_end import jpeg

DATA = Path(__file__).parent / "data"
_ids = itertools.count(int(time.time()) % 100_000 * 1000)

#: Payloads refused 400 by design: each is listed, with why, in its source's PROVENANCE.md.
INVALID = {
    # Bot API 10.1 requires UniqueGift.gift_id; teloxide's literal predates it.
    "telegram/teloxide/message__unique_gift_info_1.json",
}

#: What a file in the corpus holds (a PDF with a text layer: read, and answered once).
CORPUS_PDF = text_pdf(["A short letter from the corpus, read by the bot."])

#: The single-event payloads that are answered (one reply each); every other file is silent.
LINE_ANSWERED = {
    "line-bot-sdk-go": {"00", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "14",
                        "28"},
    "line-bot-sdk-python": {f"{v}_{n}" for v in ("v2", "v3")
                            for n in ("00", "02", "03", "04", "05", "06", "08", "21", "24",
                                      "25")},
}
TELEGRAM_ANSWERED = {
    "aiogram/raw_update.json", "aiogram/update_00_message.json",
    "teloxide/message__de_image_1.json", "teloxide/message__de_media_forwarded_1.json",
    "teloxide/message__de_media_group_forwarded_1.json", "teloxide/message__de_sticker_1.json",
    "teloxide/message__de_text_1.json", "teloxide/message__effect_id_1.json",
    "teloxide/message__parse_caption_entities_1.json",
    "teloxide/message__show_caption_above_media_1.json",
    "teloxide/update__de_private_chat_text_message_1.json", "teloxide/update__issue_1107_2.json",
    "teloxide/update__message_1.json",
}
WHATSAPP_ANSWERED = {f"pywa/{name}.json" for name in (
    "call_permission_update__accept", "call_permission_update__reject",
    "callback_button__button", "callback_button__quick_reply",
    "callback_button__quick_reply_without_context", "callback_selection__callback",
    "callback_selection__description", "flow_completion__completion",
    "flow_completion__without_flow_token", "message__animated_sticker", "message__audio",
    "message__chosen_location", "message__contacts", "message__current_location",
    "message__document", "message__forwarded", "message__forwarded_many_times",
    "message__image", "message__interactive_message_with_err", "message__media_with_url",
    "message__order", "message__referral", "message__reply", "message__static_sticker",
    "message__text", "message__unsupported", "message__unsupported_with_type",
    "message__video", "message__voice")}


def corpus(platform: str) -> list[Path]:
    return sorted((DATA / platform / "corpus").glob("*/*.json"))


def name_of(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def fresh_id(prefix: str = "") -> str:
    return f"{prefix}{next(_ids)}"


@pytest.fixture(scope="module")
def corpus_service(deploy):
    """A deployment of its own: a clean Redis database and a worker log no other test wrote."""
    return deploy("qwen3_vl", BUSY_NOTICE_SECONDS="0", RATE_LIMIT_MESSAGES="0")


def active(service) -> int:
    client = redis.Redis.from_url(service.redis_url)
    try:
        return client.zcard(KeyBuilder().active())
    finally:
        client.close()


def accepted(service, platform: Platform, bot_id: str, event_id: str) -> bool:
    client = redis.Redis.from_url(service.redis_url)
    try:
        return bool(client.exists(KeyBuilder().dedupe(platform, bot_id, event_id)))
    finally:
        client.close()


def settle(service, missing: Callable[[], list[str]]) -> None:
    """Wait until every answered conversation has its reply and no turn is left in flight."""
    try:
        wait_until(lambda: not missing() and active(service) == 0, 180,
                   "every answer sent and the service idle")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; unanswered: {missing()}; in flight: {active(service)}; "
                             f"worker log: {service.worker.log_path.read_text()[-3000:]}") from None


def finish(service, stand_in, expected: dict, sent: Callable[[Any], int], caplog) -> None:
    """Once idle: each conversation got exactly its replies, nobody else got any, the requests
    fit the platform's spec and no log holds an error."""
    settle(service, lambda: [k for k, n in expected.items() if sent(k) < n])
    assert {k: sent(k) for k in expected} == expected
    assert len(stand_in.sent_texts()) == sum(expected.values())  # and nothing to anyone else
    assert stand_in.spec_errors == []
    assert_clean_logs(service, caplog)


def assert_clean_logs(service, caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    worker_log = service.worker.log_path.read_text(errors="replace")
    assert "Traceback" not in worker_log and '"level": "ERROR"' not in worker_log


# ------------------------------------------------------------------------------------- LINE
def line_expected(path: Path) -> list[int]:
    """Replies per event: a whole-file body's event i is the single-event file numbered i."""
    source = path.parent.name
    events = json.loads(path.read_text())["events"]
    answered = LINE_ANSWERED[source]
    if path.stem.endswith("all_events"):
        version = path.stem.split("_")[0] + "_" if source == "line-bot-sdk-python" else ""
        return [int(f"{version}{i:02d}" in answered) for i in range(len(events))]
    number = "_".join(path.stem.split("_")[:2]) if source == "line-bot-sdk-python" \
        else path.stem[:2]
    return [int(number in answered)]


def test_every_line_payload(corpus_service, line_api, transcription_api, caplog):
    line, service = line_api, corpus_service
    line.reset()
    caplog.set_level(logging.INFO)
    conversations: dict[str, int] = {}  # reply target -> replies expected
    files: dict[str, str] = {}
    refused: list[tuple[str, str]] = []  # (bot id, event id) that must not be accepted
    def replies(to: str) -> int:
        return len(line.sent_texts(to))

    for path in corpus("line"):
        if path.stem.endswith("all_events"):  # a batch ends: let its turns finish first
            settle(service, lambda: [files[t] for t, n in conversations.items()
                                     if replies(t) < n])
        body = json.loads(path.read_text())
        for event, expected in zip(body["events"], line_expected(path), strict=True):
            source = event.get("source") or {}
            user = fresh_id("U")
            source["userId"] = user
            target = user
            for field in ("groupId", "roomId"):
                if field in source:
                    source[field] = target = fresh_id(field[0].upper())
            event["webhookEventId"] = fresh_id("01H")
            event["timestamp"] = int(time.time() * 1000)
            if "replyToken" in event:
                event["replyToken"] = line.issue_reply_token(target)
            message = event.get("message")
            if isinstance(message, dict) and "id" in message:
                message["id"] = fresh_id()
                if message.get("type") == "image":
                    line.add_content(message["id"], jpeg(color="teal"))
                elif message.get("type") == "audio":
                    line.add_content(message["id"], line_audio(2.0), "audio/x-m4a")
                elif message.get("type") == "file":  # a PDF (#22): read, one answer
                    line.add_content(message["id"], CORPUS_PDF, "application/pdf")
            conversations[target] = expected
            files[target] = name_of(path)
            if not expected:
                refused.append((body.get("destination") or "line", event["webhookEventId"]))
        answer = service.post_line(body)
        assert answer.status_code == 200, (name_of(path), answer.text)
    for bot_id, event_id in refused:
        assert not accepted(service, Platform.LINE, bot_id, event_id), event_id

    finish(service, line, conversations, replies, caplog)


# --------------------------------------------------------------------------------- Telegram
def test_every_telegram_payload(corpus_service, telegram_api, caplog):

    telegram, service = telegram_api, corpus_service
    telegram.reset()
    caplog.set_level(logging.INFO)
    answered: dict[int, int] = {}
    for path in corpus("telegram"):
        update = json.loads(path.read_text())
        update["update_id"] = next(_ids)
        message = update.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            private = message["chat"].get("type") == "private"
            chat = next(_ids) * (1 if private else -1)
            message["chat"]["id"] = chat
            if private and isinstance(message.get("from"), dict):
                message["from"]["id"] = chat
            message["date"] = int(time.time())
            for size in message.get("photo") or []:
                telegram.add_file(size["file_id"], jpeg(color="navy"),
                                  file_path=f"photos/{size['file_id']}.jpg")
            if name_of(path) in TELEGRAM_ANSWERED:
                answered[chat] = 1
        answer = service.post_update(update)
        expected = 400 if f"telegram/{name_of(path)}" in INVALID else 200
        assert answer.status_code == expected, (name_of(path), answer.text)
    assert len(answered) == len(TELEGRAM_ANSWERED)

    def sent(chat: int) -> int:
        return len(telegram.sent_texts(chat))

    finish(service, telegram, answered, sent, caplog)


# --------------------------------------------------------------------------------- WhatsApp
def test_every_whatsapp_payload(corpus_service, whatsapp_api, transcription_api, caplog):
    whatsapp, service = whatsapp_api, corpus_service
    whatsapp.reset()
    caplog.set_level(logging.INFO)
    answered: dict[str, int] = {}
    for path in corpus("whatsapp"):
        body = json.loads(path.read_text())
        phone = fresh_id("65")
        for entry in body.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value")
                if not isinstance(value, dict):
                    continue
                for contact in value.get("contacts") or []:
                    contact.update({k: phone for k in ("wa_id",) if k in contact})
                    contact.update({k: f"SG.{phone}" for k in ("user_id",) if k in contact})
                    # A shared parent BSUID would make every file one person (identities).
                    contact.update({k: f"SG.ENT.{phone}" for k in ("parent_user_id",)
                                    if k in contact})
                for message in value.get("messages") or []:
                    if "from" in message:
                        message["from"] = phone
                    if "from_user_id" in message:
                        message["from_user_id"] = f"SG.{phone}"
                    if "from_parent_user_id" in message:
                        message["from_parent_user_id"] = f"SG.ENT.{phone}"
                    message["id"] = f"wamid.{uuid.uuid4().hex}"
                    message["timestamp"] = str(int(time.time()))
                    for kind in ("image", "audio", "voice", "video", "document", "sticker"):
                        media = message.get(kind)
                        if isinstance(media, dict) and "id" in media:
                            media["id"] = fresh_id()
                            content = jpeg(color="purple") if kind == "image" else voice_note(2.0)
                            mime = "image/jpeg" if kind == "image" else "audio/ogg; codecs=opus"
                            if kind == "document":  # a PDF (#22): read, one answer
                                content, mime = CORPUS_PDF, "application/pdf"
                            whatsapp.add_media(media["id"], content, mime_type=mime)
        if name_of(path) in WHATSAPP_ANSWERED:
            answered[phone] = 1
        answer = service.post_whatsapp(body)
        assert answer.status_code == 200, (name_of(path), answer.text)
    assert len(answered) == len(WHATSAPP_ANSWERED)

    def sent(to: str) -> int:
        return len(whatsapp.sent_texts(to))

    finish(service, whatsapp, answered, sent, caplog)
