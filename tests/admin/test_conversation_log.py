"""The conversation log on real SQLite and real PostgreSQL: record, list, filter, search, thread,
export, delete a person, retention, and the migration matching the models."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from bot.messages import Platform
from bot.settings import Settings
from storage.conversation_log import (
    Base,
    Conversation,
    ConversationFilter,
    ConversationLog,
    LogImage,
    LogMessage,
    csv_lines,
    jsonl_lines,
    make_thumbnail,
    purge_expired,
    search_words,
    upgrade_database,
)
from tests.admin.conftest import inbound, key_of, photo, turn

NOW = dt.datetime.now(dt.UTC)


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def test_migration_matches_the_models(conversation_log: ConversationLog):
    search_objects = {"log_messages_fts", "ix_log_messages_text_trgm",
                      "ix_log_conversations_user_name_trgm", "alembic_version"}

    def include(obj, name, type_, reflected, compare_to):
        return not (name in search_objects or (name or "").startswith("log_messages_fts"))

    with conversation_log.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include,
                                                               "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'log.db'}"
    upgrade_database(url)
    upgrade_database(url)
    assert (tmp_path / "nested" / "dir" / "log.db").exists()


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
    assert conversation_log.count_messages() == 4


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
        assert broken.record_turn(key, "A", [inbound(key, "secret words")], "secret words", [],
                                  "answer", "en", "m", 1, 1, 1, None) is False
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
    assert row.message_count == 60 == conversation_log.count_messages()


def _fill(conversation_log: ConversationLog) -> dict[str, int]:
    turn(conversation_log, key_of("telegram", "1"), "Where can I eat durian in Penang?",
         "Try the stalls on Jalan Macalister.", name="Aisyah", language="en", at=days_ago(10))
    turn(conversation_log, key_of("telegram", "2"), "Bagaimana cara membuat rendang?",
         "Rendang dimasak perlahan dengan santan.", name="Budi", language="id", at=days_ago(5))
    turn(conversation_log, key_of("line", "U3"), "ขอสูตรต้มยำกุ้งหน่อย", "ต้มยำกุ้งใช้ตะไคร้และข่า",
         name="สมชาย", language="th", at=days_ago(3))
    turn(conversation_log, key_of("whatsapp", "84901"), "Phở bò nấu thế nào?",
         "Nấu nước dùng xương bò trong nhiều giờ.", name="Nguyễn Văn An", language="vi",
         at=days_ago(1))
    turn(conversation_log, key_of("line", "U5"), "Saan masarap kumain ng adobo? 100% sure",
         "Sa Maynila, maraming kainan.", name="Maria", language="tl", at=days_ago(0.5))
    return {r.user_id: r.id for r in conversation_log.list_conversations().rows}


def _users(page) -> list[str]:
    return [r.user_id for r in page.rows]


def test_list_is_newest_first_with_filters(conversation_log: ConversationLog):
    _fill(conversation_log)
    log = conversation_log
    assert _users(log.list_conversations()) == ["U5", "84901", "U3", "2", "1"]
    assert _users(log.list_conversations(ConversationFilter(platform="line"))) == ["U5", "U3"]
    assert _users(log.list_conversations(ConversationFilter(language="id"))) == ["2"]
    assert _users(log.list_conversations(ConversationFilter(platform="line", language="th"))) \
        == ["U3"]
    assert _users(log.list_conversations(ConversationFilter(since=days_ago(4)))) == \
        ["U5", "84901", "U3"]
    assert _users(log.list_conversations(ConversationFilter(until=days_ago(4)))) == ["2", "1"]
    assert _users(log.list_conversations(ConversationFilter(since=days_ago(6),
                                                            until=days_ago(2)))) == ["U3", "2"]
    assert log.languages() == ["en", "id", "th", "tl", "vi"]


@pytest.mark.parametrize(("query", "expected"), [
    ("durian", ["1"]),
    ("DURIAN penang", ["1"]),  # every word, any case
    ("durian rendang", []),  # words must meet in one message
    ("rendang", ["2"]),
    ("santan", ["2"]),  # in the bot's answer
    ("ต้มยำ", ["U3"]),  # Thai: no spaces between words, matched as a substring
    ("Phở", ["84901"]),
    ("nước dùng", ["84901"]),
    ('"nước dùng xương"', ["84901"]),  # a quoted phrase
    ("Nguyễn", ["84901"]),  # the person's name
    ("aisyah", ["1"]),
    ("U3", ["U3"]),  # a user id
    ("100%", ["U5"]),  # % and _ are literal
    ("%", ["U5"]),
    ("_", []),
    ("Sa", ["U5", "2"]),  # shorter than a trigram: still found (Sa Maynila, santan)
    ("zzzzqqq", []),
])
def test_search(conversation_log: ConversationLog, query: str, expected: list[str]):
    _fill(conversation_log)
    page = conversation_log.list_conversations(ConversationFilter(search=query))
    assert _users(page) == expected
    assert page.total == len(expected)


def test_search_combines_with_filters(conversation_log: ConversationLog):
    _fill(conversation_log)
    flt = ConversationFilter(search="a", platform="telegram", language="id")
    assert _users(conversation_log.list_conversations(flt)) == ["2"]


def test_search_words():
    assert search_words('  nasi "goreng ayam"  pedas ') == ["nasi", "goreng ayam", "pedas"]
    assert search_words("") == []
    assert len(search_words(" ".join(str(n) for n in range(20)))) == 8


def test_pagination(conversation_log: ConversationLog):
    for n in range(23):
        turn(conversation_log, key_of("telegram", f"{n:03d}"), f"question {n}", f"answer {n}",
             at=NOW - dt.timedelta(minutes=100 - n))
    first = conversation_log.list_conversations(page=1, per_page=10)
    last = conversation_log.list_conversations(page=3, per_page=10)
    assert (first.total, first.pages) == (23, 3)
    assert _users(first)[:2] == ["022", "021"]
    assert _users(last) == ["002", "001", "000"]
    assert conversation_log.list_conversations(page=9, per_page=10).rows == []


def test_thread_pages_back(conversation_log: ConversationLog):
    key = key_of()
    for n in range(7):
        turn(conversation_log, key, f"q{n}", f"a{n}", at=NOW - dt.timedelta(minutes=10 - n))
    cid = conversation_log.list_conversations().rows[0].id
    newest = conversation_log.thread(cid, limit=5)
    assert [m.text for m in newest.messages] == ["a4", "q5", "a5", "q6", "a6"]
    assert newest.older_than is not None
    older = conversation_log.thread(cid, limit=20, before=newest.older_than)
    assert [m.text for m in older.messages] == ["q0", "a0", "q1", "a1", "q2", "a2", "q3", "a3",
                                                "q4"]
    assert older.older_than is None
    assert len(older.messages) + len(newest.messages) == 14
    assert conversation_log.thread(999_999) is None


def test_export_rows_and_formats(conversation_log: ConversationLog):
    ids = _fill(conversation_log)
    turn(conversation_log, key_of("telegram", "1"), "=HYPERLINK(\"http://x\")", "-1+1",
         images=[make_thumbnail(photo())], at=days_ago(9))
    rows = list(conversation_log.export_rows(conversation_id=ids["1"]))
    assert [r["direction"] for r in rows] == ["in", "out", "in", "out"]
    assert rows[0]["text"] == "Where can I eat durian in Penang?"
    assert rows[2]["images"] == 1 and rows[0]["images"] == 0
    assert rows[0]["user_name"] == "Aisyah" and rows[0]["platform"] == "telegram"
    dt.datetime.fromisoformat(rows[0]["created_at"])

    everything = list(conversation_log.export_rows())
    assert len(everything) == 12
    filtered = list(conversation_log.export_rows(ConversationFilter(platform="line")))
    assert {r["user_id"] for r in filtered} == {"U3", "U5"}
    searched = list(conversation_log.export_rows(ConversationFilter(search="ต้มยำ")))
    assert {r["user_id"] for r in searched} == {"U3"} and len(searched) == 2

    lines = b"".join(jsonl_lines(rows)).decode().splitlines()
    assert [json.loads(line)["text"] for line in lines][2] == '=HYPERLINK("http://x")'
    text = b"".join(csv_lines(everything)).decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(table) == 12
    assert any(r["text"] == "ขอสูตรต้มยำกุ้งหน่อย" for r in table)
    # A spreadsheet must not run what a user wrote.
    assert any(r["text"] == "'=HYPERLINK(\"http://x\")" for r in table)
    assert any(r["text"] == "'-1+1" for r in table)


def test_export_streams_in_batches(conversation_log: ConversationLog):
    key = key_of()
    for n in range(30):
        turn(conversation_log, key, f"q{n}", f"a{n}", at=NOW - dt.timedelta(minutes=60 - n))
    rows = conversation_log.export_rows(batch=7)
    assert next(rows)["text"] == "q0"
    assert len(list(rows)) == 59


def test_delete_person(conversation_log: ConversationLog):
    ids = _fill(conversation_log)
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
    assert conversation_log.find_conversation(same_id_elsewhere) is not None
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
    assert conversation_log.count_messages() == 4


def test_purge_expired_follows_retention_days(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade_database(url)
    conversation_log = ConversationLog(url)
    turn(conversation_log, key_of(), "old", "old", at=days_ago(10))
    turn(conversation_log, key_of("line", "U9"), "new", "new", at=days_ago(1))
    assert purge_expired(Settings(database_url=url, retention_days=0)).messages == 0
    assert conversation_log.count_messages() == 4
    assert purge_expired(Settings(database_url=url, retention_days=7)).messages == 2
    assert conversation_log.count_messages() == 2
    conversation_log.close()


def test_settings_defaults():
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///.sealion/log.db"
    assert settings.admin_username == "admin"
    assert settings.retention_days == 0


def test_plain_postgresql_urls_mean_psycopg3():
    from storage.conversation_log import normalize_url, redact_url

    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "p@" not in redact_url("postgresql://u:p@h/db")


def test_the_migrate_command(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from sqlalchemy import inspect

    from bot.cli import main
    from bot.settings import get_settings

    target = tmp_path / "cli" / "log.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    conversation_log = ConversationLog(f"sqlite:///{target}")
    tables = set(inspect(conversation_log.engine).get_table_names())
    assert {"log_conversations", "log_messages", "log_images", "log_messages_fts",
            "alembic_version"} <= tables
    conversation_log.close()


def test_downgrade_and_upgrade_again(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from storage.conversation_log import alembic_config

    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade_database(url)
    command.downgrade(alembic_config(url), "base")
    conversation_log = ConversationLog(url)
    assert set(inspect(conversation_log.engine).get_table_names()) == {"alembic_version"}
    upgrade_database(url)
    assert turn(conversation_log, key_of(), "back again", "yes")
    assert conversation_log.list_conversations(ConversationFilter(search="again")).total == 1
    conversation_log.close()
