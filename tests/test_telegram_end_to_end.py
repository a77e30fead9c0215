"""Telegram, end to end: webhook -> real Redis and Celery worker -> tiny model -> stand-in API."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import io
import time

import pytest
import redis
from PIL import Image

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from tests.conftest import LOG_ID_KEY, TELEGRAM_TOKEN, new_chat_id
from tests.helpers.updates import group_update, photo_update, sticker_update, text_update
from tests.helpers.waiting import sent_to, wait_replies, wait_settled, wait_until

BOT_ID = TELEGRAM_TOKEN.split(":")[0]


def jpeg(width: int = 1280, height: int = 960, color: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG")
    return out.getvalue()


def history_of(service, chat_id: int, user_id: int | None = None) -> RedisHistory:
    client = redis.Redis.from_url(service.redis_url)
    return RedisHistory(client, ttl=3600, max_turns=50), ConversationKey(
        platform=Platform.TELEGRAM, bot_id=BOT_ID, chat_id=str(chat_id),
        user_id=str(chat_id if user_id is None else user_id))


# --- on both architectures -------------------------------------------------------------------

def test_text_message_gets_exactly_one_reply(service, telegram):
    chat = new_chat_id()
    started = time.perf_counter()
    response = service.post_update(text_update(chat, "Apa khabar? Boleh tolong saya?"))
    assert response.status_code == 200
    assert time.perf_counter() - started < 1.0  # acknowledged without waiting for the model

    [reply] = wait_replies(telegram, chat, 1)
    assert reply.params["text"].strip()
    assert sent_to(telegram, chat, "sendChatAction"), "no typing indicator"
    history, key = history_of(service, chat)
    entries = history.load(key)
    assert [e.role for e in entries][:1] == ["user"]
    assert entries[0].text == "Apa khabar? Boleh tolong saya?"


def test_photo_with_caption_is_downloaded_and_answered(service, telegram):
    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(), file_path="photos/file_1.jpg")
    assert service.post_update(photo_update(chat, caption="Ini gambar apa?")).status_code == 200

    wait_replies(telegram, chat, 1)
    # The largest size within the pixel budget: 1280x960, not the 2560x1920 original.
    assert [c.params["file_id"] for c in telegram.calls_to("getFile")] == ["photo-large"]
    assert telegram.calls_to("file")
    history, key = history_of(service, chat)
    [user_turn, *_] = history.load(key)
    assert user_turn.text == "Ini gambar apa?" and len(user_turn.image_ids) == 1
    stored = history.image(key, user_turn.image_ids[0])
    assert Image.open(io.BytesIO(stored)).size[0] <= 1280


# --- on one architecture ---------------------------------------------------------------------

def test_photo_without_caption_is_answered(qwen_service, telegram):
    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="navy"), file_path="photos/file_2.jpg")
    assert qwen_service.post_update(photo_update(chat, caption=None)).status_code == 200
    wait_replies(telegram, chat, 1)


def test_the_same_update_twice_gets_one_reply(qwen_service, telegram):
    chat = new_chat_id()
    update = text_update(chat, "Hello there, what is the capital of Vietnam?")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: qwen_service.post_update(update).status_code, range(4)))
    assert statuses == [200] * 4
    wait_replies(telegram, chat, 1)
    assert qwen_service.post_update(update).status_code == 200  # a late redelivery
    wait_settled(chat)
    assert len(sent_to(telegram, chat)) == 1


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong-secret-value", 403)])
def test_forged_or_missing_secret_is_refused(qwen_service, telegram, secret, status):
    chat = new_chat_id()
    response = qwen_service.post_update(text_update(chat, "hi"), secret=secret)
    assert response.status_code == status
    wait_settled(chat)
    assert sent_to(telegram, chat) == []
    client = redis.Redis.from_url(qwen_service.redis_url)
    assert not client.keys(f"sealion:conv:telegram:{BOT_ID}:{chat}:*")


def test_malformed_json_is_a_400(qwen_service):
    response = qwen_service.client.post(
        "/webhooks/telegram", content=b'{"update_id": 1, "message": {',
        headers={"X-Telegram-Bot-Api-Secret-Token": qwen_service.env["TELEGRAM_WEBHOOK_SECRET"],
                 "Content-Type": "application/json"})
    assert response.status_code == 400
    response = qwen_service.client.post(
        "/webhooks/telegram", json=["not", "an", "update"],
        headers={"X-Telegram-Bot-Api-Secret-Token": qwen_service.env["TELEGRAM_WEBHOOK_SECRET"]})
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["edited_message", "callback_query"])
def test_unhandled_update_types_are_ignored(qwen_service, telegram, name):
    from tests.helpers.updates import load

    update = load(name)
    assert qwen_service.post_update(update).status_code == 200
    wait_settled(update[name]["from"]["id"])  # the person's chat
    assert telegram.calls_to("sendMessage") == []


def test_sticker_gets_a_polite_notice_in_the_users_language(qwen_service, telegram):
    chat = new_chat_id()
    assert qwen_service.post_update(sticker_update(chat)).status_code == 200
    [reply] = wait_replies(telegram, chat, 1)
    assert reply.params["text"] == text(Text.UNSUPPORTED, "th")


def test_start_greets_and_reset_clears_history(qwen_service, telegram):
    chat = new_chat_id()
    qwen_service.post_update(text_update(chat, "/start", language_code=None))
    [greeting] = wait_replies(telegram, chat, 1)
    assert greeting.params["text"] == text(Text.GREETING, "ms")  # from the user's language_code

    qwen_service.post_update(text_update(chat, "Saya suka makan nasi lemak setiap pagi."))
    wait_replies(telegram, chat, 2)
    history, key = history_of(qwen_service, chat)
    assert [e.role for e in history.load(key)] == ["user", "assistant"]

    qwen_service.post_update(text_update(chat, "/reset"))
    calls = wait_replies(telegram, chat, 3)
    language = redis.Redis.from_url(qwen_service.redis_url).get(
        f"sealion:conv:{key.as_path()}:lang").decode()
    assert calls[-1].params["text"] == text(Text.RESET_DONE, language)
    assert history.load(key) == []


def test_lang_command_pins_the_reply_language(qwen_service, telegram):
    from bot.kernel.languages import LANGUAGE_NAMES

    chat = new_chat_id()
    language = redis.Redis.from_url(qwen_service.redis_url)
    _, key = history_of(qwen_service, chat)

    qwen_service.post_update(text_update(chat, "/lang th"))
    [pinned] = wait_replies(telegram, chat, 1)
    assert pinned.params["text"] == text(Text.LANG_SET, "th", language=LANGUAGE_NAMES["th"])
    qwen_service.post_update(text_update(chat, "Hello there, how are you doing today my friend?"))
    wait_replies(telegram, chat, 2)
    assert language.get(f"sealion:conv:{key.as_path()}:lang") == b"th"  # detection ignored

    qwen_service.post_update(text_update(chat, "/lang auto"))
    released = wait_replies(telegram, chat, 3)[-1]
    assert released.params["text"] == text(Text.LANG_AUTO, "th")
    qwen_service.post_update(text_update(chat, "Hello there, how are you doing today my friend?"))
    wait_replies(telegram, chat, 4)
    assert language.get(f"sealion:conv:{key.as_path()}:lang") == b"en"


def test_messages_sent_while_answering_join_the_next_turn(qwen_service, telegram):
    chat = new_chat_id()
    texts = ["Pertama, saya mau tanya.", "Kedua, tentang harga beras.", "Ketiga, di Jakarta."]
    for body in texts:
        assert qwen_service.post_update(text_update(chat, body)).status_code == 200
    history, key = history_of(qwen_service, chat)

    def user_texts():
        return [e.text for e in history.load(key) if e.role == "user"]

    wait_until(lambda: "\n".join(user_texts()).count("\n") + 1 >= 3 and len(user_texts()) >= 1
               and all(t in "\n".join(user_texts()) for t in texts), 60, "all three messages")
    wait_settled(chat)
    # Every message is in the history, in order, and each turn got exactly one reply.
    joined = "\n".join(user_texts())
    assert joined.index(texts[0]) < joined.index(texts[1]) < joined.index(texts[2])
    assert len(sent_to(telegram, chat)) == len(user_texts()) <= 2


def test_album_becomes_one_turn(qwen_service, telegram):
    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="green"), file_path="photos/album.jpg")
    first = photo_update(chat, caption="Which of these is cheaper?", media_group_id="album-77")
    second = photo_update(chat, caption=None, media_group_id="album-77")
    second["message"]["photo"][2]["file_id"] = "photo-large"
    qwen_service.post_update(first)
    qwen_service.post_update(second)
    wait_replies(telegram, chat, 1)
    history, key = history_of(qwen_service, chat)
    [user_turn] = [e for e in history.load(key) if e.role == "user"]
    assert len(user_turn.image_ids) == 2
    assert user_turn.text == "Which of these is cheaper?"


def test_group_answers_only_when_addressed(qwen_service, telegram):
    chat = -(10**12 + new_chat_id())
    qwen_service.post_update(group_update(chat, "Kumain ka na ba? Tara kain tayo mamaya."))
    wait_settled(chat)
    assert sent_to(telegram, chat) == []

    mention = "@sealion_test_bot ano ang adobo?"
    qwen_service.post_update(group_update(chat, mention, entities=[
        {"type": "mention", "offset": 0, "length": len("@sealion_test_bot")}]))
    [reply] = wait_replies(telegram, chat, 1)
    assert reply.params.get("reply_parameters")  # answers the message that asked

    reply_to_bot = group_update(chat, "Salamat po! Paano lutuin?")
    reply_to_bot["message"]["reply_to_message"] = {
        "message_id": 1, "date": 1763780000, "text": "...",
        "chat": reply_to_bot["message"]["chat"],
        "from": {"id": int(BOT_ID), "is_bot": True, "first_name": "SEA-LION"}}
    qwen_service.post_update(reply_to_bot)
    wait_replies(telegram, chat, 2)


def test_flood_control_is_honoured(qwen_service, telegram):
    chat = new_chat_id()
    telegram.fail_next("sendMessage", status=429, retry_after=1)
    qwen_service.post_update(text_update(chat, "Cảm ơn bạn, hôm nay trời đẹp quá."))
    [reply] = wait_replies(telegram, chat, 1)
    refused = [c for c in telegram.calls_to("sendMessage") if c.status == 429]
    assert len(refused) == 1 and reply.at - refused[0].at >= 0.9


def test_formatting_error_never_loses_the_reply(qwen_service, telegram):
    chat = new_chat_id()
    telegram.fail_next("sendMessage", status=400, retry_after=None,
                       description="Bad Request: can't parse entities: unexpected end tag")
    qwen_service.post_update(text_update(chat, "Tolong jelaskan tentang rendang."))
    [reply] = wait_replies(telegram, chat, 1)
    refused = [c for c in telegram.calls_to("sendMessage") if c.status == 400]
    assert len(refused) == 1 and refused[0].params["parse_mode"] == "HTML"
    assert "parse_mode" not in reply.params  # resent as plain text


def test_photo_over_20_mb_gets_a_clear_message(qwen_service, telegram):
    chat = new_chat_id()
    update = photo_update(chat, caption=None)
    update["message"].pop("photo")
    update["message"]["document"] = {"file_id": "big-doc", "file_unique_id": "b-1",
                                     "file_name": "scan.png", "mime_type": "image/png",
                                     "file_size": 25 * 1024 * 1024}
    qwen_service.post_update(update)
    [reply] = wait_replies(telegram, chat, 1)
    assert reply.params["text"] == text(Text.FILE_TOO_LARGE, "id", limit_mb=20)


def test_killed_worker_still_answers_once_after_restart(deploy, telegram):
    service = deploy("qwen3_vl")
    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="red"), file_path="photos/slow.jpg")
    telegram.set_delay("getFile", 30.0)  # the worker is mid-task while it waits for this
    service.post_update(photo_update(chat, caption="Apa ini?"))
    wait_until(lambda: telegram.calls_to("getFile") or telegram.in_flight("getFile"), 30,
               "the worker to ask for the photo")
    service.worker.kill()
    telegram.set_delay("getFile", 0.0)
    assert sent_to(telegram, chat) == []

    service.restart_worker()
    wait_replies(telegram, chat, 1, timeout=90)


def test_health_and_readiness(qwen_service, deploy):
    assert qwen_service.client.get("/healthz").json() == {"status": "ok"}
    ready = qwen_service.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    no_worker = qwen_service  # same Redis, but look at a database no worker beats in
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    settings = no_worker.settings.model_copy(update={"redis_url": no_worker.redis_url[:-2] + "/15"})
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["workers"] == 0


def test_metrics_move_after_a_conversation(qwen_service, telegram):
    from prometheus_client.parser import text_string_to_metric_families

    def read() -> dict:
        text = qwen_service.client.get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    ok = ("sealion_webhooks_total", (("platform", "telegram"), ("status", "200")))
    forged = ("sealion_webhooks_total", (("platform", "telegram"), ("status", "403")))
    first_reply = ("sealion_first_reply_seconds_count", (("platform", "telegram"),))
    tokens = ("sealion_generated_tokens_total", ())
    before = read()
    chat = new_chat_id()
    update = text_update(chat, "Selamat pagi, apa khabar semua hari ini?")
    qwen_service.post_update(update)
    qwen_service.post_update(update)
    qwen_service.post_update(text_update(chat, "x"), secret="forged-secret-value")
    wait_replies(telegram, chat, 1)
    # The API's own counters are flushed by the scrape; the worker's within
    # METRICS_FLUSH_SECONDS (0.5 s here).
    after = wait_until(lambda: (lambda got: got if got.get(first_reply, 0)
                                > before.get(first_reply, 0) else None)(read()),
                       10, "the worker's metrics")
    assert after[ok] - before.get(ok, 0) == 2
    assert after[forged] - before.get(forged, 0) == 1
    duplicates = ("sealion_duplicates_total", (("platform", "telegram"),))
    assert after[duplicates] - before.get(duplicates, 0) == 1
    assert after[first_reply] - before.get(first_reply, 0) == 1
    assert after[tokens] > before.get(tokens, 0)
    assert ("sealion_queue_depth", (("queue", "inference"),)) in after


def test_worker_logs_carry_ids_but_no_message_text(qwen_service, telegram):
    chat = new_chat_id()
    secret_words = "Nombor kad saya ialah rahsia sekali"
    update = text_update(chat, secret_words)
    qwen_service.post_update(update)
    wait_replies(telegram, chat, 1)
    logs = qwen_service.worker.log_path.read_text()
    user = update["message"]["from"]["id"]
    path = f"telegram:{TELEGRAM_TOKEN.split(':')[0]}:{chat}:{user}"
    pseudonym = hmac.new(LOG_ID_KEY.encode(), path.encode(), hashlib.sha256).hexdigest()[:16]
    # The conversation is named by its keyed pseudonym (LOG_ID_KEY), never by its ids.
    assert f'"conversation": "telegram:{pseudonym}"' in logs
    assert f":{chat}:" not in logs and f":{user}" not in logs
    assert secret_words not in logs and TELEGRAM_TOKEN not in logs


def test_turns_are_written_once_to_the_conversation_log(qwen_service, telegram):
    from storage.log import ConversationFilter, ConversationLog

    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="brown"), file_path="photos/log.jpg")
    update = photo_update(chat, caption="Berapa harga durian ini?")
    qwen_service.post_update(update)
    [reply] = wait_replies(telegram, chat, 1)
    log = ConversationLog(qwen_service.env["DATABASE_URL"])
    try:
        page = wait_until(lambda: log.list_conversations(
            ConversationFilter(search="durian", platform="telegram")).rows, 20, "the log row")
        [row] = [r for r in page if r.chat_id == str(chat)]
        assert row.user_name == "Siti" and row.message_count == 2
        thread = log.thread(row.id)
        inbound, outbound = thread.messages
        assert inbound.direction == "in" and inbound.text == "Berapa harga durian ini?"
        assert len(inbound.image_ids) == 1 and log.image(inbound.image_ids[0])
        assert outbound.direction == "out" and outbound.model == qwen_service.env["MODEL_ID"]
        assert outbound.text.strip() and outbound.latency_ms is not None
    finally:
        log.close()


def test_disabled_platform_webhook_is_404(qwen_service):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    telegram_only = qwen_service.settings.model_copy(update={
        "line_channel_secret": None, "whatsapp_access_token": None})
    with TestClient(create_app(telegram_only)) as client:
        assert client.post("/webhooks/line", json={"events": []}).status_code == 404
        assert client.post("/webhooks/whatsapp", json={"entry": []}).status_code == 404
        assert client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe"}).status_code \
            == 404
        # Not a platform at all: the path's platform (an enum) refuses it.
        assert client.post("/webhooks/nope", json={}).status_code == 422
        assert client.get("/readyz").json()["platforms"] == ["telegram"]


def test_sixteen_simultaneous_conversations_are_generated_together(qwen_service, telegram):
    from prometheus_client.parser import text_string_to_metric_families

    def batches() -> dict[str, float]:
        text = qwen_service.client.get("/metrics").text
        return {s.labels.get("le", s.name): s.value
                for f in text_string_to_metric_families(text)
                if f.name == "sealion_batch_size" for s in f.samples
                if s.name.endswith(("_bucket", "_count"))}

    before = batches()
    chats = [new_chat_id() for _ in range(16)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda c: qwen_service.post_update(
            text_update(c, "Selamat pagi! Apa cuaca hari ini di Kuala Lumpur?")), chats))
    for chat in chats:
        wait_replies(telegram, chat, 1, timeout=120)
    # The worker flushes its metrics every METRICS_FLUSH_SECONDS (0.5 s here).
    after = wait_until(lambda: (lambda got: got if got.get("sealion_batch_size_count", 0)
                                - before.get("sealion_batch_size_count", 0) >= 16 else None)(
        batches()), 10, "the worker's metrics")
    requests = after["sealion_batch_size_count"] - before.get("sealion_batch_size_count", 0)
    alone = after["1"] - before.get("1", 0)
    assert requests >= 16
    # Most requests shared their generate() call with others (the worker has 8 threads).
    assert alone <= requests / 2, (alone, requests)
