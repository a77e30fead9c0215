"""WhatsApp, end to end: webhook -> real Redis and Celery worker -> tiny model -> stand-in API."""

from __future__ import annotations

import itertools

from bot.kernel.texts import Text, text
from tests.conftest import WHATSAPP_VERIFY_TOKEN
from tests.helpers.payloads import whatsapp_message
from tests.helpers.waiting import wait_count, wait_settled, wait_until
from tests.test_telegram_end_to_end import jpeg

_numbers = itertools.count(6590000001)


def new_wa_id() -> str:
    return str(next(_numbers))


def texts_to(whatsapp, wa_id: str) -> list[str]:
    return whatsapp.sent_texts(wa_id)


def wait_texts(whatsapp, wa_id: str, count: int, timeout: float = 60):
    return wait_count(lambda: texts_to(whatsapp, wa_id), wa_id, count, timeout)


def test_handshake(qwen_service):
    params = {"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN,
              "hub.challenge": "1158201444"}
    response = qwen_service.client.get("/webhooks/whatsapp", params=params)
    assert response.status_code == 200 and response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")
    params["hub.verify_token"] = "guess"
    assert qwen_service.client.get("/webhooks/whatsapp", params=params).status_code == 403


def test_text_gets_one_reply_and_a_typing_indicator(qwen_service, whatsapp):
    wa_id = new_wa_id()
    body = whatsapp_message("text", wa_id)
    assert qwen_service.post_whatsapp(body).status_code == 200
    [answer] = wait_texts(whatsapp, wa_id, 1)
    assert answer.strip()
    [read] = whatsapp.calls_to("read")
    assert read.body["message_id"] == body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert read.body["typing_indicator"] == {"type": "text"}


def test_image_is_fetched_and_answered(qwen_service, whatsapp):
    wa_id = new_wa_id()
    whatsapp.add_media("1003383421387256", jpeg(color="purple"))
    assert qwen_service.post_whatsapp(whatsapp_message("image_caption", wa_id)).status_code == 200
    wait_texts(whatsapp, wa_id, 1)
    [info] = whatsapp.calls_to("media_info")
    [download] = whatsapp.calls_to("media_download")
    assert download.headers["authorization"] == info.headers["authorization"]


def test_duplicate_delivery_gets_one_reply(qwen_service, whatsapp):
    wa_id = new_wa_id()
    body = whatsapp_message("text", wa_id)
    for _ in range(3):
        assert qwen_service.post_whatsapp(body).status_code == 200
    wait_texts(whatsapp, wa_id, 1)


def test_forged_or_missing_signature_is_refused(qwen_service, whatsapp):
    wa_id = new_wa_id()
    body = whatsapp_message("text", wa_id)
    assert qwen_service.post_whatsapp(body, signature=None).status_code == 401
    assert qwen_service.post_whatsapp(body, signature="sha256=" + "0" * 64).status_code == 403
    wait_settled(wa_id)
    assert texts_to(whatsapp, wa_id) == [] and whatsapp.calls_to("read") == []


def test_statuses_are_never_answered(qwen_service, whatsapp):
    wa_ids = [new_wa_id() for _ in range(4)]
    for name, wa_id in zip(("status_sent", "status_delivered", "status_read", "status_failed"),
                           wa_ids, strict=True):
        assert qwen_service.post_whatsapp(whatsapp_message(name, wa_id)).status_code == 200
    wait_settled(*wa_ids)
    assert whatsapp.calls_to("send") == []


def test_sticker_gets_a_polite_notice(qwen_service, whatsapp):
    wa_id = new_wa_id()
    qwen_service.post_whatsapp(whatsapp_message("sticker", wa_id))
    [notice] = wait_texts(whatsapp, wa_id, 1)
    assert notice in {text(Text.UNSUPPORTED, code) for code in ("en", "ms", "id")}


def test_throughput_error_is_retried(qwen_service, whatsapp):
    wa_id = new_wa_id()
    whatsapp.fail_next("send", status=400, code=130429)
    qwen_service.post_whatsapp(whatsapp_message("text", wa_id))
    wait_texts(whatsapp, wa_id, 1, timeout=60)
    assert [c.status for c in whatsapp.calls_to("send")] == [400, 200]


def test_outside_the_24_hour_window_is_not_retried(qwen_service, whatsapp):
    wa_id = new_wa_id()
    whatsapp.fail_next("send", status=400, code=131047)
    qwen_service.post_whatsapp(whatsapp_message("text", wa_id))
    wait_until(lambda: whatsapp.calls_to("send"), 60, "a send attempt")
    wait_settled(wa_id)  # the turn is over: nothing more will be sent for it
    assert [c.status for c in whatsapp.calls_to("send")] == [400]
    # The conversation is not stuck: the next message is answered.
    qwen_service.post_whatsapp(whatsapp_message("text", wa_id))
    wait_texts(whatsapp, wa_id, 1)
