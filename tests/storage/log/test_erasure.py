"""Forgetting on real SQLite and PostgreSQL: deleting a person everywhere they were logged, and
retention."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from adapters.telegram import TelegramAdapter
from bot.kernel.messages import InboundMessage, Platform
from bot.kernel.settings import Settings
from storage.log import (
    ConversationFilter,
    ConversationLog,
    TurnRecord,
    purge_expired,
    upgrade_database,
)
from storage.log.models import LogImage
from tests.helpers.conversation_log import (
    count_messages,
    days_ago,
    fill,
    find_conversation,
    inbound,
    key_of,
    photo,
    turn,
)
from tests.helpers.payloads import load
from workers.images import make_thumbnail

TELEGRAM = TelegramAdapter(Settings(_env_file=None, telegram_bot_token="7000001:secret"),
                           username="sealion_test_bot")


def group_message(sender: int, name: str, text: str, *, chat: int = -1001234567,
                  at: dt.datetime | None = None) -> InboundMessage:
    """A real Telegram group update (the recorded payload, addressed to the bot), parsed."""
    update = load("telegram", "group_text")
    message = update["message"]
    mention = "@sealion_test_bot"
    message.update(text=f"{mention} {text}", date=int((at or dt.datetime.now(dt.UTC)).timestamp()),
                   entities=[{"type": "mention", "offset": 0, "length": len(mention)}])
    message["from"].update(id=sender, first_name=name)
    message["chat"]["id"] = chat
    [parsed] = TELEGRAM.parse(json.dumps(update).encode())
    return parsed


def group_turn(conversation_log: ConversationLog, messages: list[InboundMessage], answer: str,
               turn_id: str) -> None:
    assert conversation_log.record_turn(TurnRecord(
        key=messages[0].key, messages=tuple(messages), reply_text=answer, language="en",
        turn_id=turn_id))


def test_delete_person(conversation_log: ConversationLog):
    ids = fill(conversation_log)
    # Budi also talks to a second bot, and in a group where the bot saw his messages.
    turn(conversation_log, key_of("telegram", "2", bot="999"), "halo bot kedua", "halo!",
         images=[make_thumbnail(photo())])
    budi = group_message(2, "Budi", "I want rendang")
    assert budi.key.user_id == "" and budi.sender_id == "2"  # the sender comes from parse
    group_turn(conversation_log, [group_message(7, "Wati", "team lunch ideas?")],
               "Nasi padang!", "t-wati")
    group_turn(conversation_log, [budi], "Rendang it is, Budi!", "t-budi")
    gid = find_conversation(conversation_log, budi.key).id
    assert conversation_log.conversation(gid).user_name == "Budi"  # the last speaker's name
    same_id_elsewhere = key_of("whatsapp", "2")  # user "2" on another platform: someone else
    turn(conversation_log, same_id_elsewhere, "not Budi", "ok")

    assert len(conversation_log.person_conversations(Platform.TELEGRAM, "2")) == 2
    assert conversation_log.person_group_messages("telegram", "2") == 1
    deleted = conversation_log.delete_person("telegram", "2")
    assert sorted(k.bot_id for k in deleted.conversations) == ["7000001", "999"]
    assert deleted.messages == 6  # 2 + 2 private rows, his group message and its answer
    assert conversation_log.person_conversations("telegram", "2") == []
    assert conversation_log.conversation(ids["2"]) is None
    for gone in ("rendang", "kedua"):
        assert conversation_log.list_conversations(ConversationFilter(search=gone)).total == 0
    group_row = conversation_log.conversation(gid)
    assert group_row is not None and group_row.message_count == 2
    assert group_row.user_name is None  # his name no longer labels the group
    assert conversation_log.list_conversations(ConversationFilter(search="padang")).total == 1
    assert [r.key for r in conversation_log.person_conversations("whatsapp", "2")] == \
        [same_id_elsewhere]
    with conversation_log.session() as session:
        assert session.scalar(select(func.count()).select_from(LogImage)) == 0
    assert conversation_log.list_conversations().total == 6
    with pytest.raises(ValueError):
        conversation_log.delete_person("telegram", "")


def test_a_group_turn_of_several_people_is_deleted_per_sender(conversation_log: ConversationLog):
    wati, budi = group_message(7, "Wati", "lunch at noon?"), group_message(2, "Budi", "rendang")
    group_turn(conversation_log, [wati, budi], "Both good ideas.", "t-both")
    assert conversation_log.person_group_messages("telegram", "2") == 1
    deleted = conversation_log.delete_person("telegram", "2")
    assert deleted.messages == 1  # his message only: the answer also answered Wati
    assert conversation_log.list_conversations(ConversationFilter(search="rendang")).total == 0
    assert conversation_log.list_conversations(ConversationFilter(search="noon")).total == 1
    # Redelivered, the turn is still written once.
    group_turn(conversation_log, [wati, budi], "Both good ideas.", "t-both")
    assert count_messages(conversation_log) == 2


def test_a_turn_in_flight_during_the_deletion_is_not_written_back(
        conversation_log: ConversationLog):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    in_flight_private = inbound(key_of("telegram", "2"), "my address is ...", at=before)
    in_flight_group = group_message(2, "Budi", "my phone is ...", at=before)
    wati_in_flight = group_message(7, "Wati", "and my question", at=before)
    conversation_log.delete_person("telegram", "2")

    for message in (in_flight_private, in_flight_group):
        conversation_log.record_turn(TurnRecord(key=message.key, messages=(message,),
                                                reply_text="noted", turn_id="late"))
    # The deletion also emptied the turn's in-flight list: the record comes without messages.
    conversation_log.record_turn(TurnRecord(key=key_of("telegram", "2"), user_text="my address",
                                            reply_text="noted", turn_id="emptied"))
    assert count_messages(conversation_log) == 0

    # A group turn in flight with Wati's message and his: only Wati's is written.
    conversation_log.record_turn(TurnRecord(
        key=wati_in_flight.key, messages=(wati_in_flight, in_flight_group),
        user_text="and my question\nmy phone is ...", reply_text="answer to both",
        user_name="Budi", thumbnails=(make_thumbnail(photo()),), turn_id="mixed"))
    assert conversation_log.list_conversations(ConversationFilter(search="phone")).total == 0
    [row] = conversation_log.list_conversations(ConversationFilter(search="question")).rows
    assert row.user_name == "Wati" and row.message_count == 2
    with conversation_log.session() as session:
        assert session.scalar(select(func.count()).select_from(LogImage)) == 0
    assert count_messages(conversation_log) == 2

    # Someone else's turn, and Budi's next message after the deletion, are logged again.
    group_turn(conversation_log, [group_message(7, "Wati", "still here", at=before)], "hi",
               "t-wati")
    back = inbound(key_of("telegram", "2"), "hello again",
                   at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert conversation_log.record_turn(TurnRecord(key=back.key, messages=(back,),
                                                   reply_text="welcome", turn_id="new"))
    assert count_messages(conversation_log) == 6


def test_purge_older_than(conversation_log: ConversationLog):
    old_and_new = key_of("telegram", "10")
    turn(conversation_log, old_and_new, "old question", "old answer",
         images=[make_thumbnail(photo())], at=days_ago(40))
    turn(conversation_log, old_and_new, "new question", "new answer", at=days_ago(2))
    turn(conversation_log, key_of("line", "U20"), "ancient", "history", at=days_ago(100))
    turn(conversation_log, key_of("line", "U30"), "fresh", "news", at=days_ago(0.1))

    purged = conversation_log.purge_older_than(30)
    assert (purged.messages, purged.conversations) == (4, 1)
    rows = {r.user_id: r for r in conversation_log.list_conversations().rows}
    assert set(rows) == {"10", "U30"}
    assert rows["10"].message_count == 2
    assert rows["10"].first_message_at > days_ago(3)
    assert conversation_log.list_conversations(ConversationFilter(search="old")).total == 0
    with conversation_log.session() as session:
        assert session.scalar(select(func.count()).select_from(LogImage)) == 0
    assert conversation_log.purge_older_than(0).messages == 0
    assert count_messages(conversation_log) == 4


def test_purge_expired_follows_retention_days(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade_database(url)
    conversation_log = ConversationLog(url)
    turn(conversation_log, key_of(), "old", "old", at=days_ago(10))
    turn(conversation_log, key_of("line", "U9"), "new", "new", at=days_ago(1))
    assert purge_expired(Settings(database_url=url, retention_days=0)).messages == 0
    assert count_messages(conversation_log) == 4
    assert purge_expired(Settings(database_url=url, retention_days=7)).messages == 2
    assert count_messages(conversation_log) == 2
    conversation_log.close()
