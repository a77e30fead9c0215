"""The console stays fast with 100,000 logged messages: a search and a list page each answer in
a fraction of a second on SQLite (FTS5 trigram) and on PostgreSQL (pg_trgm GIN); the insights
page's figures, over 30 days or the whole log, in three SQL statements.

The limits are loose on purpose (a noisy two-core machine); the figures are printed (`-s`)."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from storage.log import ConversationFilter, ConversationLog, InsightsRange
from storage.log.models import Conversation, LogMessage
from tests.helpers.conversation_log import count_messages, empty_postgres, sqlite_log

# A log of real size (100k messages), on SQLite and PostgreSQL.
pytestmark = pytest.mark.integration

MESSAGES = 100_000
CONVERSATIONS = 2_000
#: A search or a list page: tens to a few hundred ms measured on an idle 2-core machine (the
#: figures: docs/benchmarks.md), 0.67 s once while the whole suite and an install shared it.
#: A bound for a change of complexity (a query per row), not a benchmark.
LIMIT_SECONDS = 2.0
#: The insights page's figures, over up to the whole log: 0.2-1.1 s measured on an idle 2-core
#: machine, 3.1 s once while the whole suite ran on it. The bound only catches a change of
#: complexity (a query per day or per row); what is held exactly is the number of statements.
INSIGHTS_LIMIT_SECONDS = 15.0
#: `storage.log.insights`: every level's counts, latency percentiles, ratings.
INSIGHTS_STATEMENTS = 3
PLATFORMS = ("telegram", "line", "whatsapp")
LANGUAGES = ("en", "id", "th", "vi", "tl", "ms")
_VOCABULARY = {
    "en": "the weather is nice today can you help me write a letter to my teacher about food "
          "rice market price train ticket",
    "id": "apa kabar hari ini saya mau tanya tentang resep nasi goreng yang enak dan murah "
          "bagaimana caranya",
    "th": "สวัสดี วันนี้ อากาศ ดี มาก ช่วย แปล ภาษา ไทย หน่อย ขอบคุณ ครับ ค่ะ ราคา ตลาด",
    "vi": "xin chào hôm nay trời đẹp quá bạn có thể giúp tôi viết thư cho thầy giáo không",
    "tl": "magandang umaga po ano ang masarap na ulam ngayon salamat sa tulong mo kaibigan",
    "ms": "selamat pagi boleh tolong saya terjemah ayat ini ke bahasa inggeris terima kasih",
}
WORDS = {language: words.split() for language, words in _VOCABULARY.items()}
#: Planted in a handful of messages: what an operator looks for.
RARE = "rambutan-festival"
RARE_COUNT = 7


def _rows() -> tuple[list[dict], list[dict]]:
    rng = random.Random(20261102)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    conversations, messages = [], []
    per_conversation = MESSAGES // CONVERSATIONS
    rare_at = set(rng.sample(range(MESSAGES), RARE_COUNT))
    n = 0
    for c in range(1, CONVERSATIONS + 1):
        language = LANGUAGES[c % len(LANGUAGES)]
        first = start + dt.timedelta(minutes=rng.randrange(0, 200_000))
        times = [first + dt.timedelta(seconds=40 * i) for i in range(per_conversation)]
        conversations.append({
            "id": c, "platform": PLATFORMS[c % 3], "bot_id": "7000001",
            "chat_id": str(100_000 + c),
            "user_id": str(100_000 + c), "user_name": f"Person {c}", "language": language,
            "first_message_at": times[0], "last_message_at": times[-1],
            "message_count": per_conversation})
        vocabulary = WORDS[language]
        for i, at in enumerate(times):
            words = rng.choices(vocabulary, k=rng.randrange(6, 30))
            if n in rare_at:
                words.insert(rng.randrange(len(words)), RARE)
            messages.append({
                "conversation_id": c, "direction": "in" if i % 2 == 0 else "out",
                "sender_id": str(100_000 + c) if i % 2 == 0 else None,
                "text": " ".join(words), "language": language, "created_at": at,
                "model": None if i % 2 == 0 else "aisingapore/Qwen-SEA-LION-v4-4B-VL",
                "latency_ms": None if i % 2 == 0 else rng.randrange(300, 4000)})
            n += 1
    return conversations, messages


def _fill(conversation_log: ConversationLog) -> None:
    conversations, messages = _rows()
    with conversation_log.engine.begin() as connection:
        connection.execute(insert(Conversation), conversations)
        for i in range(0, len(messages), 10_000):
            connection.execute(insert(LogMessage), messages[i:i + 10_000])
    with conversation_log.engine.begin() as connection:
        if conversation_log.dialect == "postgresql":
            connection.execute(text("ANALYZE log_conversations; ANALYZE log_messages"))
        else:
            connection.execute(text("ANALYZE"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big_log(request, tmp_path_factory) -> Iterator[ConversationLog]:
    started = time.perf_counter()
    if request.param == "sqlite":
        made = sqlite_log(tmp_path_factory.mktemp("scale") / "log.db")
    else:
        made = empty_postgres(request.getfixturevalue("postgres_log"))
    _fill(made)
    print(f"\n[{made.dialect}] {MESSAGES:,} messages inserted in "
          f"{time.perf_counter() - started:.1f} s")
    yield made
    if request.param == "sqlite":
        made.close()
    else:
        empty_postgres(made)


def _timed(what: str, dialect: str, call: Callable[[], Any], *,
           limit: float = LIMIT_SECONDS) -> Any:
    call()  # warm: statement caches, pages in memory
    seconds, result = [], None
    for _ in range(3):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    print(f"[{dialect}] {what}: median {median * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms")
    assert median < limit, f"{what} took {median:.3f} s on {dialect}"
    return result


def test_the_log_holds_100k_messages(big_log: ConversationLog):
    assert count_messages(big_log) == MESSAGES


@pytest.mark.parametrize(("label", "flt", "expected"), [
    ("search a rare word", ConversationFilter(search=RARE), "rare"),
    ("search two common words", ConversationFilter(search="nasi goreng"), None),
    ("search Thai", ConversationFilter(search="อากาศ"), None),
    ("search a word that is nowhere", ConversationFilter(search="durian-xyz"), 0),
    ("search + platform + language", ConversationFilter(search="salamat",
                                                        platform="line", language="tl"), None),
])
def test_search_is_fast(big_log: ConversationLog, label, flt, expected):
    page = _timed(f"{label} (list page 1)", big_log.dialect,
                  lambda: big_log.list_conversations(flt, page=1, per_page=50))
    if expected == "rare":
        assert 1 <= page.total <= RARE_COUNT
    elif expected is not None:
        assert page.total == expected
    else:
        assert page.total > 0 and len(page.rows) == 50


@pytest.mark.parametrize(("label", "flt", "page"), [
    ("list page 1", ConversationFilter(), 1),
    ("list page 30", ConversationFilter(), 30),
    ("list filtered by platform and language", ConversationFilter(platform="line",
                                                                  language="id"), 2),
    ("list filtered by dates", ConversationFilter(since=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
                                                  until=dt.datetime(2026, 2, 20,
                                                                    tzinfo=dt.UTC)), 1),
])
def test_list_pages_are_fast(big_log: ConversationLog, label, flt, page):
    result = _timed(label, big_log.dialect,
                    lambda: big_log.list_conversations(flt, page=page, per_page=50))
    assert result.rows and all(r.last_text for r in result.rows)


def test_thread_and_export_are_fast(big_log: ConversationLog):
    thread = _timed("thread of one conversation", big_log.dialect,
                    lambda: big_log.thread(1234))
    assert len(thread.messages) == MESSAGES // CONVERSATIONS
    rows = _timed("export of one conversation", big_log.dialect,
                  lambda: list(big_log.export_rows(conversation_id=1234)))
    assert len(rows) == MESSAGES // CONVERSATIONS


@pytest.mark.parametrize(("label", "scope"), [
    ("insights, 30 days", InsightsRange(dt.date(2026, 2, 1), dt.date(2026, 3, 2))),
    ("insights, 30 days, one platform and language",
     InsightsRange(dt.date(2026, 2, 1), dt.date(2026, 3, 2), "line", "tl")),
    ("insights, the whole log (182 days)", InsightsRange(dt.date(2026, 1, 1),
                                                         dt.date(2026, 7, 1))),
])
def test_insights_are_fast(big_log: ConversationLog, label, scope):
    """The insights page's three statements (`storage.log.insights`: every level's counts,
    latency percentiles and ratings), with a rating on every tenth answer."""
    with big_log.engine.begin() as connection:
        if not connection.execute(text("SELECT count(*) FROM ratings")).scalar():
            connection.execute(text(
                "INSERT INTO ratings (message_id, conversation_id, rating, source, platform, "
                "language, created_at, updated_at) "
                "SELECT m.id, m.conversation_id, CASE WHEN m.id % 3 = 0 THEN -1 ELSE 1 END, "
                "'button', c.platform, m.language, m.created_at, m.created_at "
                "FROM log_messages m JOIN log_conversations c ON c.id = m.conversation_id "
                "WHERE m.direction = 'out' AND m.id % 10 = 0"))
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):  # not SQLite's BEGIN
            statements.append(statement)

    event.listen(big_log.engine, "before_cursor_execute", count)
    try:
        big_log.insights(scope)
    finally:
        event.remove(big_log.engine, "before_cursor_execute", count)
    assert len(statements) == INSIGHTS_STATEMENTS, statements
    found = _timed(label, big_log.dialect, lambda: big_log.insights(scope),
                   limit=INSIGHTS_LIMIT_SECONDS)
    assert found.total.turns == sum(f.turns for _, f in found.days) > 0
    assert abs(found.total.answers - found.total.turns) <= 2  # a turn across the range's end
    assert 300 <= found.total.latency_p50_ms <= found.total.latency_p95_ms < 4000
    assert found.total.ratings > 0
    if scope.platform is None:
        assert sum(f.turns for f in found.languages.values()) == found.total.turns
