"""WhatsApp identities, end to end: one person writing with a phone only, a phone and a
business-scoped user id (BSUID), a BSUID only (phone hidden), and after a `user_changed_user_id`
with the new BSUID, through the real webhook, Redis and worker, has one conversation (one
history, one log row) and gets every answer: at the phone while one is known, at the BSUID
(`recipient`) when not."""

from __future__ import annotations

import itertools
import time

import redis

from bot.kernel.messages import ConversationKey, Platform
from storage.history import HistoryEntry
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from tests.helpers.payloads import whatsapp_person, whatsapp_user_id_changed
from tests.helpers.waiting import wait_until

PHONE_ID = "106540352242922"  # the recorded payloads' metadata.phone_number_id
_people = itertools.count(int(time.time()) % 100_000 * 10 + 6_580_000_000)


def person_ids() -> tuple[str, str, str, str]:
    n = next(_people)
    return str(n), f"SG.{n}1", f"SG.ENT.{n}2", f"SG.{n}3"


def answered(whatsapp, recipient: str, count: int) -> list[str]:
    wait_until(lambda: len(whatsapp.sent_texts(recipient)) >= count, 60,
               f"{count} WhatsApp answer(s)")
    return whatsapp.sent_texts(recipient)


def test_four_shapes_of_one_person_are_one_conversation(qwen_service, whatsapp):
    phone, bsuid, parent, new_bsuid = person_ids()
    client = redis.Redis.from_url(qwen_service.redis_url)
    log = ConversationLog(qwen_service.settings.database_url)
    keys = KeyBuilder()
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id=PHONE_ID, chat_id=phone,
                          user_id=phone)
    try:
        def post(body: dict) -> None:
            assert qwen_service.post_whatsapp(body).status_code == 200

        post(whatsapp_person("Where is Sentosa?", phone=phone))
        answered(whatsapp, phone, 1)
        post(whatsapp_person("And Pulau Ubin?", phone=phone, bsuid=bsuid))
        answered(whatsapp, phone, 2)
        post(whatsapp_person("My number is hidden now", bsuid=bsuid, parent=parent))
        assert len(answered(whatsapp, bsuid, 1)) == 1  # sent to the BSUID, in `recipient`
        post(whatsapp_user_id_changed(bsuid, new_bsuid, previous_parent=parent, parent=parent))
        post(whatsapp_person("New phone, same me", bsuid=new_bsuid, parent=parent))
        # The link itself is never answered: the next answer is the fourth message's.
        assert len(answered(whatsapp, new_bsuid, 1)) == 1
        assert len(whatsapp.sent_texts(phone)) == 2 and whatsapp.spec_errors == []

        def user_turns() -> list[str]:
            return [HistoryEntry.model_validate_json(raw).text
                    for raw in client.lrange(keys.history(key), 0, -1)
                    if HistoryEntry.model_validate_json(raw).role == "user"]

        wait_until(lambda: len(user_turns()) == 4, 30, "four turns in one history")
        assert user_turns() == ["Where is Sentosa?", "And Pulau Ubin?",
                                "My number is hidden now", "New phone, same me"]
        others = [k for k in client.scan_iter(match="sealion:conv:whatsapp:*:SG.*")
                  if bsuid.encode() in k or new_bsuid.encode() in k]
        assert others == []
        wait_until(lambda: sum(c.message_count for c in log.person_conversations(
            "whatsapp", phone)) == 8, 30, "one logged conversation of eight messages")
        assert len(log.person_conversations("whatsapp", phone)) == 1
        assert log.person_conversations("whatsapp", bsuid) == []
    finally:
        client.close()
        log.close()
