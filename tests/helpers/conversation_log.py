"""The conversation log on a real SQLite file and on a real PostgreSQL (its own database, created
for the session and dropped after it), and helpers that make turns and photos. The fixtures are
registered by the conftest of each test folder that uses them (tests/storage/log, tests/admin)."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.log import ConversationLog, ConversationRow, TurnRecord, upgrade_database
from storage.log.models import Conversation, LogMessage

#: Where the PostgreSQL tests go; the machine's service by default (trust auth).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ("log_images", "log_messages", "log_conversations", "log_erasures",
          "knowledge_vectors", "knowledge_postings", "knowledge_terms", "knowledge_passages",
          "knowledge_documents")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server (or, without the right to create one, a
    schema of our own in `test`); dropped at the end. Skips when no server answers."""
    admin_url = make_url(POSTGRES_URL)
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    try:
        connection = engine.connect()
    except DBAPIError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()} "
                    f"(set TEST_POSTGRES_URL): {type(exc.orig).__name__}: {exc.orig}")
    name = f"sealion_log_{secrets.token_hex(6)}"
    url: URL
    try:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin_url.set(database=name)

        def cleanup() -> None:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except DBAPIError:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = admin_url.update_query_dict({"options": f"-csearch_path={name},public"})

        def cleanup() -> None:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    try:
        rendered = url.render_as_string(hide_password=False)
        upgrade_database(rendered)
        yield rendered
    finally:
        cleanup()
        connection.close()
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_log(postgres_url: str) -> Iterator[ConversationLog]:
    conversation_log = ConversationLog(postgres_url)
    yield conversation_log
    conversation_log.close()


def empty_postgres(conversation_log: ConversationLog) -> ConversationLog:
    with conversation_log.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return conversation_log


def sqlite_log(path) -> ConversationLog:
    url = f"sqlite:///{path}"
    upgrade_database(url)
    return ConversationLog(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def conversation_log(request, tmp_path) -> Iterator[ConversationLog]:
    """An empty, migrated log on each backend in turn."""
    if request.param == "sqlite":
        made = sqlite_log(tmp_path / "log.db")
        yield made
        made.close()
    else:
        yield empty_postgres(request.getfixturevalue("postgres_log"))


NOW = dt.datetime.now(dt.UTC)


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


# --- making turns ------------------------------------------------------------------------------


def key_of(platform: Platform | str = Platform.TELEGRAM, user: str = "501", *,
           bot: str = "7000001", chat: str | None = None, group: bool = False) -> ConversationKey:
    platform = Platform(platform)
    if group:
        return ConversationKey(platform=platform, bot_id=bot, chat_id=chat or f"g{user}")
    return ConversationKey(platform=platform, bot_id=bot, chat_id=chat or user, user_id=user)


def inbound(key: ConversationKey, text: str, *, n: int = 1, name: str | None = None,
            at: dt.datetime | None = None) -> InboundMessage:
    sent = (at or dt.datetime.now(dt.UTC)).timestamp()
    return InboundMessage(key=key, event_id=f"ev-{secrets.token_hex(4)}", message_id=f"m{n}",
                          text=text, user_name=name, sent_at=sent, received_at=sent)


def turn(conversation_log: ConversationLog, key: ConversationKey, question: str, answer: str, *,
         name: str | None = None, language: str = "en", images: list[bytes] | None = None,
         at: dt.datetime | None = None, turn_id: str | None = None, error: str | None = None,
         latency_ms: float = 850.0) -> bool:
    at = at or dt.datetime.now(dt.UTC)
    return conversation_log.record_turn(TurnRecord(
        key=key, user_name=name, messages=(inbound(key, question, name=name, at=at),),
        user_text=question, thumbnails=tuple(images or ()), reply_text=answer, language=language,
        model="aisingapore/Qwen-SEA-LION-v4-4B-VL", latency_ms=latency_ms, prompt_tokens=120,
        completion_tokens=42, error=error, turn_id=turn_id,
        answered_at=at + dt.timedelta(milliseconds=latency_ms)))


def find_conversation(conversation_log: ConversationLog,
                      key: ConversationKey) -> ConversationRow | None:
    """The log's row of the conversation `key`, or None (the console itself never looks one up
    by its key)."""
    with conversation_log.session() as session:
        found = session.scalars(select(Conversation).where(
            Conversation.platform == key.platform.value, Conversation.bot_id == key.bot_id,
            Conversation.chat_id == key.chat_id, Conversation.user_id == key.user_id)).first()
        return ConversationRow.of(found) if found is not None else None


def count_messages(conversation_log: ConversationLog) -> int:
    """Every logged message, counted in SQL (the log itself has no use for the number)."""
    with conversation_log.session() as session:
        return session.scalar(select(func.count()).select_from(LogMessage)) or 0


def photo(color: tuple[int, int, int] = (200, 60, 40), size: tuple[int, int] = (640, 480),
          label: str = "") -> bytes:
    """A JPEG with some shapes on it (so a thumbnail of it is visibly a picture)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.55, h * 0.1, w * 0.85, h * 0.5), fill=(255, 214, 64))
    draw.polygon([(0, h), (w * 0.35, h * 0.35), (w * 0.7, h)], fill=(40, 110, 60))
    draw.polygon([(w * 0.4, h), (w * 0.7, h * 0.5), (w, h)], fill=(30, 80, 45))
    if label:
        draw.text((12, 12), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def fill(conversation_log: ConversationLog) -> dict[str, int]:
    """Five conversations on three platforms in five languages; their ids by user id."""
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
