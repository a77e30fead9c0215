"""Writing turns to the conversation log on real SQLite and PostgreSQL: both sides, once per turn,
errors, never raising, concurrent writers."""

from __future__ import annotations

import logging
import threading

from storage.log import ConversationLog, TurnRecord
from tests.helpers.conversation_log import (
    count_messages,
    days_ago,
    inbound,
    key_of,
    photo,
    turn,
)
from workers.images import make_thumbnail


def test_record_turn_writes_both_sides(conversation_log: ConversationLog):
    key = key_of("telegram", "501")
    thumb = make_thumbnail(photo(size=(1600, 1200)))
    assert 0 < len(thumb) < 30_000
    assert turn(conversation_log, key, "Apa kabar? Ini foto kucing saya.", "Kucing yang lucu!",
                name="Budi Santoso", language="id", images=[thumb, thumb], at=days_ago(1))
    page = conversation_log.list_conversations()
    assert page.total == 1
    row = page.rows[0]
    assert (row.platform, row.user_id, row.chat_id, row.user_name, row.language) == \
        ("telegram", "501", "501", "Budi Santoso", "id")
    assert row.message_count == 2
    assert row.last_text == "Kucing yang lucu!" and row.last_direction == "out"
    assert row.first_message_at <= row.last_message_at
    assert row.first_message_at.tzinfo is not None

    thread = conversation_log.thread(row.id)
    assert thread is not None
    question, answer = thread.messages
    assert (question.direction, question.text, question.platform_message_id) == \
        ("in", "Apa kabar? Ini foto kucing saya.", "m1")
    assert len(question.image_ids) == 2
    data, mime = conversation_log.image(question.image_ids[0])
    assert mime == "image/jpeg" and data == thumb
    assert (answer.direction, answer.model, answer.latency_ms, answer.prompt_tokens,
            answer.completion_tokens, answer.language) == \
        ("out", "aisingapore/Qwen-SEA-LION-v4-4B-VL", 850, 120, 42, "id")
    assert answer.created_at > question.created_at


def test_a_redelivered_turn_is_logged_once(conversation_log: ConversationLog):
    key = key_of("line", "U1")
    for _ in range(3):
        assert turn(conversation_log, key, "hello", "hi there", turn_id="turn-1")
    turn(conversation_log, key, "again", "yes", turn_id="turn-2")
    row = conversation_log.list_conversations().rows[0]
    assert row.message_count == 4
    assert count_messages(conversation_log) == 4


def test_an_error_and_no_answer_are_logged(conversation_log: ConversationLog):
    key = key_of("whatsapp", "6591234567")
    turn(conversation_log, key, "tell me a story", "", error="RuntimeError: CUDA out of memory")
    messages = conversation_log.thread(conversation_log.list_conversations().rows[0].id).messages
    assert [m.direction for m in messages] == ["in", "out"]
    assert messages[1].error == "RuntimeError: CUDA out of memory"


def test_record_turn_never_raises(tmp_path, caplog):
    broken = ConversationLog(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables
    key = key_of()
    with caplog.at_level(logging.ERROR):
        record = TurnRecord(key=key, user_name="A", messages=(inbound(key, "secret words"),),
                            user_text="secret words", reply_text="answer", language="en",
                            model="m", latency_ms=1, prompt_tokens=1, completion_tokens=1)
        assert broken.record_turn(record) is False
    assert "not recorded" in caplog.text
    assert "secret words" not in caplog.text  # message text stays out of the logs
    broken.close()


def test_concurrent_turns_keep_the_count(conversation_log: ConversationLog):
    key = key_of("telegram", "777")
    results: list[bool] = []

    def write(n: int) -> None:
        for i in range(5):
            results.append(turn(conversation_log, key, f"q{n}-{i}", f"a{n}-{i}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 30
    row = conversation_log.list_conversations().rows[0]
    assert conversation_log.list_conversations().total == 1
    assert row.message_count == 60 == count_messages(conversation_log)
