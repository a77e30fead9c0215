"""Deleting a person through the real path (issue #12, hole 9): real Telegram updates through
the webhook, turns run by the real worker, the admin console's delete form, then a search of
the log and of Redis. A turn in flight during the deletion does not write them back."""

from __future__ import annotations

import itertools
import re
import time

import pytest
import redis

from bot.kernel.messages import ConversationKey, Platform
from storage.keys import KeyBuilder
from storage.log import ConversationFilter, ConversationLog
from tests.conftest import TELEGRAM_TOKEN
from tests.helpers.updates import group_update, text_update
from tests.helpers.waiting import sent_to, wait_settled, wait_until

PASSWORD = "a long enough admin password"
BOT_ID = TELEGRAM_TOKEN.split(":")[0]
MENTION = "@sealion_test_bot"
_people = itertools.count(int(time.time()) % 100_000 * 10 + 700_000_000)


@pytest.fixture(scope="module")
def service(deploy, tmp_path_factory):
    return deploy("qwen3_vl", ADMIN_PASSWORD=PASSWORD,
                  DATA_DIR=str(tmp_path_factory.mktemp("admin-data")))


def now_date(update: dict) -> dict:
    update["message"]["date"] = int(time.time())
    return update


def in_group(chat: int, person: int, name: str, text: str) -> dict:
    update = group_update(chat, f"{MENTION} {text}", entities=[
        {"type": "mention", "offset": 0, "length": len(MENTION)}])
    update["message"]["from"].update(id=person, first_name=name)
    return now_date(update)


def privately(person: int, text: str) -> dict:
    return now_date(text_update(person, text))


def admin_delete(service, user_id: int | str, platform: str = "telegram") -> str:
    """Delete a person with the console's form; returns the confirmation page."""
    client = service.client
    page = client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    signed = client.post("/admin/login", follow_redirects=False, data={
        "username": "admin", "password": PASSWORD, "csrf": csrf, "next": "/admin"})
    assert signed.status_code == 303, signed.text
    form = client.get("/admin/people/delete",
                      params={"platform": platform, "user_id": str(user_id)})
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = client.post("/admin/people/delete", follow_redirects=False, data={
        "platform": platform, "user_id": str(user_id), "csrf": csrf})
    assert done.status_code == 303, done.text
    return form.text


def replies(telegram, chat: int, count: int) -> list[str]:
    wait_until(lambda: len(sent_to(telegram, chat)) >= count, 60,
               f"{count} message(s) to chat {chat}")
    return [c.params["text"] for c in sent_to(telegram, chat)]


def test_deleting_a_person_removes_their_group_messages_and_all_their_keys(service, telegram):
    group, budi, wati = -1_000_000_000_000 - next(_people), next(_people), next(_people)
    log = ConversationLog(service.settings.database_url)
    client = redis.Redis.from_url(service.redis_url)
    keys = KeyBuilder()
    private = ConversationKey(platform=Platform.TELEGRAM, bot_id=BOT_ID, chat_id=str(budi),
                              user_id=str(budi))
    try:
        # Wati, then Budi, talk to the bot in a group; Budi also privately.
        service.post_update(in_group(group, wati, "Wati", "where to eat laksa lemak?"))
        replies(telegram, group, 1)
        service.post_update(in_group(group, budi, "Budi", "my durian kampung secret"))
        replies(telegram, group, 2)
        service.post_update(privately(budi, "my rendang padang secret"))
        replies(telegram, budi, 1)
        wait_until(lambda: log.person_group_messages("telegram", str(budi)) == 1, 30,
                   "Budi's group message in the log")
        wait_until(lambda: not client.exists(keys.turn(private)), 30, "the private turn ends")
        [row] = [r for r in log.list_conversations(ConversationFilter(search="laksa")).rows]
        assert row.user_id == "" and row.user_name == "Budi"  # the last speaker's name

        # A turn in flight: its answer is held at the platform while the person is deleted.
        telegram.set_delay("sendMessage", 30)
        service.post_update(privately(budi, "my satay kajang secret"))
        wait_until(lambda: telegram.in_flight("sendMessage") >= 1, 60, "the answer held")
        admin_delete(service, budi)
        telegram.set_delay("sendMessage", 0)
        replies(telegram, budi, 2)  # the answer still reaches the person
        wait_until(lambda: not client.exists(keys.turn(private)), 30, "the turn in flight ends")
        wait_settled(budi)  # every turn of the person's is over (and logged, if it ever will be)

        for secret in ("durian", "rendang", "satay", "Budi"):
            found = log.list_conversations(ConversationFilter(search=secret))
            assert found.total == 0, (secret, found.rows)
        assert log.person_conversations("telegram", str(budi)) == []
        assert log.person_group_messages("telegram", str(budi)) == 0
        [row] = log.list_conversations(ConversationFilter(search="laksa")).rows  # Wati's stays
        assert row.user_name is None
        left = [k.decode() for k in client.scan_iter(match=f"*{budi}*")]
        assert left == [keys.erased(Platform.TELEGRAM, str(budi))], left
    finally:
        telegram.set_delay("sendMessage", 0)
        client.close()
        log.close()


def test_deleting_one_whatsapp_id_deletes_the_person_under_all_of_them(service, whatsapp):
    """A person who wrote by phone, then with a BSUID, then by BSUID only, deleted by the BSUID:
    their phone-keyed conversation, their log rows and their identity map entries all go."""
    from tests.helpers.payloads import whatsapp_person

    n = next(_people)
    phone, bsuid = str(6_570_000_000 + n % 10_000_000), f"SG.{n}"
    log = ConversationLog(service.settings.database_url)
    client = redis.Redis.from_url(service.redis_url)
    try:
        secrets = [f"nasilemak{n}", f"kayatoast{n}", f"chendol{n}"]  # no model writes these
        for count, body in enumerate((whatsapp_person(f"my {secrets[0]}", phone=phone),
                                      whatsapp_person(f"my {secrets[1]}", phone=phone,
                                                      bsuid=bsuid),
                                      whatsapp_person(f"my {secrets[2]}", bsuid=bsuid)), 1):
            assert service.post_whatsapp(body).status_code == 200
            wait_until(lambda c=count: len(whatsapp.sent_texts(phone))
                       + len(whatsapp.sent_texts(bsuid)) >= c, 60, f"answer {count}")
        wait_until(lambda: sum(c.message_count for c in log.person_conversations(
            "whatsapp", phone)) == 6, 30, "the three turns logged")
        service.client.cookies.clear()  # sign in afresh (an earlier test may have)
        page = admin_delete(service, bsuid, "whatsapp")
        assert f"also known as <code>{phone}</code>" in page
        for secret in secrets:
            assert log.list_conversations(ConversationFilter(search=secret)).total == 0
        assert log.person_conversations("whatsapp", phone) == []
        assert log.person_conversations("whatsapp", bsuid) == []
        left = sorted(k.decode() for k in client.scan_iter(match="*")
                      if phone.encode() in k or bsuid.encode() in k)
        assert left == sorted([KeyBuilder().erased(Platform.WHATSAPP, phone),
                               KeyBuilder().erased(Platform.WHATSAPP, bsuid)]), left
        assert not client.hexists(KeyBuilder().identities(Platform.WHATSAPP), bsuid)
    finally:
        client.close()
        log.close()
