"""The console's reads of the conversation log on real SQLite and PostgreSQL: list, filters,
search in any script, pages, threads, export rows."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.log import ConversationFilter, ConversationLog, search_words
from tests.helpers.conversation_log import NOW, days_ago, fill, key_of, photo, turn
from workers.images import make_thumbnail


def _users(page) -> list[str]:
    return [r.user_id for r in page.rows]


def test_list_is_newest_first_with_filters(conversation_log: ConversationLog):
    fill(conversation_log)
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
    fill(conversation_log)
    page = conversation_log.list_conversations(ConversationFilter(search=query))
    assert _users(page) == expected
    assert page.total == len(expected)


def test_search_combines_with_filters(conversation_log: ConversationLog):
    fill(conversation_log)
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


def test_export_rows(conversation_log: ConversationLog):
    ids = fill(conversation_log)
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


def test_export_streams_in_batches(conversation_log: ConversationLog):
    key = key_of()
    for n in range(30):
        turn(conversation_log, key, f"q{n}", f"a{n}", at=NOW - dt.timedelta(minutes=60 - n))
    rows = conversation_log.export_rows(batch=7)
    assert next(rows)["text"] == "q0"
    assert len(list(rows)) == 59
