"""Forgetting on real SQLite and PostgreSQL: deleting a person everywhere they were logged, and
retention."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.messages import Platform
from bot.settings import Settings
from storage.log import ConversationFilter, ConversationLog, purge_expired, upgrade_database
from storage.log.models import Conversation, LogImage, LogMessage
from tests.helpers.conversation_log import (
    NOW,
    count_messages,
    days_ago,
    fill,
    key_of,
    photo,
    turn,
)
from workers.images import make_thumbnail


def test_delete_person(conversation_log: ConversationLog):
    ids = fill(conversation_log)
    # Budi also talks to a second bot, and in a group where the bot saw his messages.
    turn(conversation_log, key_of("telegram", "2", bot="999"), "halo bot kedua", "halo!",
         images=[make_thumbnail(photo())])
    group = key_of("telegram", "g-team", group=True)
    turn(conversation_log, group, "team lunch ideas?", "Nasi padang!")
    with conversation_log.session() as session, session.begin():
        gid = session.scalar(select(Conversation.id).where(Conversation.chat_id == "gg-team"))
        session.add(LogMessage(conversation_id=gid, direction="in", sender_id="2",
                               text="I want rendang", created_at=NOW))
        session.get(Conversation, gid).message_count += 1
    same_id_elsewhere = key_of("whatsapp", "2")  # user "2" on another platform: someone else
    turn(conversation_log, same_id_elsewhere, "not Budi", "ok")

    assert len(conversation_log.person_conversations(Platform.TELEGRAM, "2")) == 2
    assert conversation_log.person_group_messages("telegram", "2") == 1
    deleted = conversation_log.delete_person("telegram", "2")
    assert sorted(k.bot_id for k in deleted.conversations) == ["7000001", "999"]
    assert deleted.messages == 5
    assert conversation_log.person_conversations("telegram", "2") == []
    assert conversation_log.conversation(ids["2"]) is None
    assert conversation_log.list_conversations(ConversationFilter(search="rendang")).total == 0
    assert conversation_log.list_conversations(ConversationFilter(search="kedua")).total == 0
    group_row = conversation_log.conversation(gid)
    assert group_row is not None and group_row.message_count == 2
    assert [r.key for r in conversation_log.person_conversations("whatsapp", "2")] == \
        [same_id_elsewhere]
    with conversation_log.session() as session:
        assert session.scalar(select(func.count()).select_from(LogImage)) == 0
    assert conversation_log.list_conversations().total == 6
    with pytest.raises(ValueError):
        conversation_log.delete_person("telegram", "")


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
