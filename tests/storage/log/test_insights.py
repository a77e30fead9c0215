"""The insights' figures (`storage.log.insights`) on SQLite and PostgreSQL: a log seeded with known
turns over three days, three platforms and six languages — latencies, ratings, guard flags, a
hand-off answered by an operator, voice notes, photos, a group of two people, a message without a
language, and messages and a rating just outside the range — and every level's exact numbers."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from sqlalchemy import insert, select, text

from storage.log import ConversationLog, Figures, GuardRecord, InsightsRange, TurnRecord
from storage.log.insights import by_day_and, day_series
from storage.log.models import Conversation, LogMessage, Rating
from tests.helpers.conversation_log import inbound, key_of

MODEL = "aisingapore/Qwen-SEA-LION-v4-4B-VL"
D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)
RANGE = InsightsRange(D1, D3)

A = key_of("telegram", "101")
B = key_of("telegram", "102")
C = key_of("line", "U103")
D = key_of("whatsapp", "6590000104")
E = key_of("telegram", "105")
G = key_of("telegram", "g9", group=True)
U = key_of("line", "U106")
OUTSIDE = key_of("telegram", "107")


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=dt.UTC)


class Seeder:
    def __init__(self, log: ConversationLog) -> None:
        self.log = log
        self.n = 0

    def turn(self, key, when: dt.datetime, *, language: str | None, latency: int | None = None,
             model: str | None = MODEL, answer: str = "ok", photo: bool = False,
             voice: bool = False, input_guard: GuardRecord | None = None,
             output_guard: GuardRecord | None = None, messages=None,
             handoff: bool = False) -> str:
        self.n += 1
        turn_id = f"t{self.n}"
        assert self.log.record_turn(TurnRecord(
            key=key, messages=messages or (inbound(key, f"question {self.n}", at=when),),
            reply_text=answer, language=language, model=model, latency_ms=latency,
            turn_id=turn_id, thumbnails=(b"\xff\xd8 a thumbnail",) if photo else (),
            transcript="spoken words" if voice else None, input_guard=input_guard,
            output_guard=output_guard, handoff=handoff,
            answered_at=when + dt.timedelta(milliseconds=latency or 1)))
        return turn_id

    def operator(self, key, when: dt.datetime, language: str) -> None:
        self.n += 1
        assert self.log.record_turn(TurnRecord(
            key=key, reply_text="A person here: how can I help?", language=language,
            model="operator: admin", turn_id=f"op-{self.n}", answered_at=when))

    def rate(self, turn_id: str, rating: int, when: dt.datetime) -> None:
        with self.log.session() as session, session.begin():
            answer = session.scalars(select(LogMessage).where(
                LogMessage.turn_id == turn_id, LogMessage.direction == "out")).one()
            platform = answer.conversation.platform
            session.add(Rating(message_id=answer.id, conversation_id=answer.conversation_id,
                               rating=rating, source="button", platform=platform,
                               language=answer.language, created_at=when, updated_at=when))


def seed(log: ConversationLog) -> None:
    s = Seeder(log)
    # Day 1: Telegram in English (three turns: a flagged question, a photo) and Indonesian (a
    # voice note); LINE in Thai (a flagged answer).
    a1 = s.turn(A, at(D1, 12), language="en", latency=300,
                input_guard=GuardRecord("unsafe", ("Violent",)))
    a2 = s.turn(A, at(D1, 13), language="en", latency=100, photo=True)
    a3 = s.turn(A, at(D1, 14), language="en", latency=200)
    s.turn(B, at(D1, 15), language="id", latency=1000, voice=True)
    c1 = s.turn(C, at(D1, 16), language="th", latency=500)
    s.turn(C, at(D1, 17), language="th", latency=700,
           output_guard=GuardRecord("controversial"))
    for turn_id, rating in ((a1, 1), (a2, 1), (a3, -1), (c1, -1)):
        s.rate(turn_id, rating, at(D1, 20))
    # Day 2: twenty WhatsApp turns in Vietnamese (latencies 100..2000 ms, a photo, two voice
    # notes, three 👍); Telegram: A asks for a person (a notice, no model) and an operator
    # answers twice; E is blocked.
    rated = []
    for n in range(20):
        rated.append(s.turn(D, at(D2, 10, n), language="vi",
                            latency=100 * (n + 1), photo=n == 0, voice=n in (1, 2)))
    for turn_id in rated[:3]:
        s.rate(turn_id, 1, at(D2, 21))
    s.turn(A, at(D2, 15), language="en", latency=400)
    s.turn(A, at(D2, 16), language="en", latency=50, model=None,
           answer="A person from the team will reply here.", handoff=True)
    s.operator(A, at(D2, 17), "en")
    s.operator(A, at(D2, 18), "en")
    s.turn(E, at(D2, 19), language="en", answer="", model=None,
           input_guard=GuardRecord("blocked"))
    # Day 3: a Telegram group, two people in one turn (Malay), late in the UTC day; a LINE
    # message whose language is unknown.
    group = (inbound(G, "apa khabar", at=at(D3, 23, 30)).model_copy(update={"sender_id": "201"}),
             inbound(G, "saya juga", n=2, at=at(D3, 23, 31)).model_copy(
                 update={"sender_id": "202"}))
    s.turn(G, at(D3, 23, 31), language="ms", latency=900, messages=group)
    s.turn(U, at(D3, 8), language=None, latency=600)
    # Outside the range: a minute before it starts (with a 👎), a moment after it ends.
    before = s.turn(OUTSIDE, at(D1 - dt.timedelta(days=1), 23, 59), language="en", latency=100)
    s.rate(before, -1, at(D1 - dt.timedelta(days=1), 23, 59, 30))
    s.turn(OUTSIDE, at(D3 + dt.timedelta(days=1), 0, 0, 1), language="en", latency=100)


def figures(conversations, people, turns, answers, up, down, p50, p95, flags=0, handoffs=0,
            operator=0, voice=0, photos=0) -> Figures:
    return Figures(conversations=conversations, people=people, turns=turns, answers=answers,
                   thumbs_up=up, thumbs_down=down, latency_p50_ms=p50, latency_p95_ms=p95,
                   guard_flags=flags, handoffs=handoffs, operator_replies=operator,
                   voice_notes=voice, photos=photos)


def nearest_rank(values: list[int], percent: int) -> int:
    """The definition the SQL follows, in plain Python."""
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


ALL_LATENCIES = [300, 100, 200, 1000, 500, 700, *range(100, 2001, 100), 400, 900, 600]


def test_every_level_has_the_exact_figures(conversation_log: ConversationLog):
    seed(conversation_log)
    found = conversation_log.insights(RANGE)

    assert (nearest_rank(ALL_LATENCIES, 50), nearest_rank(ALL_LATENCIES, 95)) == (800, 1900)
    assert found.total == figures(7, 8, 32, 29, 5, 2, 800, 1900, flags=3, handoffs=1,
                                  operator=2, voice=3, photos=2)
    assert found.total.satisfaction == pytest.approx(5 / 7)
    assert found.total.voice_share == pytest.approx(3 / 32)
    assert found.total.photo_share == pytest.approx(2 / 32)

    assert found.days == [
        (D1, figures(3, 3, 6, 6, 2, 2, 300, 1000, flags=2, voice=1, photos=1)),
        (D2, figures(3, 3, 23, 21, 3, 0, 1000, 1900, flags=1, handoffs=1, operator=2, voice=2,
                     photos=1)),
        (D3, figures(2, 3, 3, 2, 0, 0, 600, 900)),
    ]
    assert found.platforms == {
        "line": figures(2, 2, 3, 3, 0, 1, 600, 700, flags=1),
        "telegram": figures(4, 5, 9, 6, 2, 1, 300, 1000, flags=2, handoffs=1, operator=2,
                            voice=1, photos=1),
        "whatsapp": figures(1, 1, 20, 20, 3, 0, 1000, 1900, voice=2, photos=1),
    }
    assert found.languages == {
        "en": figures(2, 2, 6, 4, 2, 1, 200, 400, flags=2, handoffs=1, operator=2, photos=1),
        "id": figures(1, 1, 1, 1, 0, 0, 1000, 1000, voice=1),
        "ms": figures(1, 2, 2, 1, 0, 0, 900, 900),
        "th": figures(1, 1, 2, 2, 0, 1, 500, 700, flags=1),
        "unknown": figures(1, 1, 1, 1, 0, 0, 600, 600),
        "vi": figures(1, 1, 20, 20, 3, 0, 1000, 1900, voice=2, photos=1),
    }
    assert [(r.day, r.platform, r.language, r.figures) for r in found.rows] == [
        (D1, "line", "th", figures(1, 1, 2, 2, 0, 1, 500, 700, flags=1)),
        (D1, "telegram", "en", figures(1, 1, 3, 3, 2, 1, 200, 300, flags=1, photos=1)),
        (D1, "telegram", "id", figures(1, 1, 1, 1, 0, 0, 1000, 1000, voice=1)),
        (D2, "telegram", "en", figures(2, 2, 3, 1, 0, 0, 400, 400, flags=1, handoffs=1,
                                       operator=2)),
        (D2, "whatsapp", "vi", figures(1, 1, 20, 20, 3, 0, 1000, 1900, voice=2, photos=1)),
        (D3, "line", "unknown", figures(1, 1, 1, 1, 0, 0, 600, 600)),
        (D3, "telegram", "ms", figures(1, 2, 2, 1, 0, 0, 900, 900)),
    ]
    assert by_day_and(found, "platform", "turns") == {
        "line": [2, 0, 1], "telegram": [4, 3, 2], "whatsapp": [0, 20, 0]}
    assert day_series(found, "satisfaction") == [(D1, 0.5), (D2, 1.0), (D3, None)]


def test_filters_and_empty_days(conversation_log: ConversationLog):
    seed(conversation_log)
    telegram = conversation_log.insights(InsightsRange(D1, D3, platform="telegram"))
    assert telegram.total == conversation_log.insights(RANGE).platforms["telegram"]
    assert sorted(telegram.languages) == ["en", "id", "ms"]
    unknown = conversation_log.insights(InsightsRange(D1, D3, language="unknown"))
    assert unknown.total == figures(1, 1, 1, 1, 0, 0, 600, 600)
    assert [r.platform for r in unknown.rows] == ["line"]
    thai_on_telegram = conversation_log.insights(InsightsRange(D1, D3, "telegram", "th"))
    assert thai_on_telegram.total == Figures() and thai_on_telegram.rows == []
    # A range with a day before and after the seeded ones: every day listed, the empty ones
    # with zeros; the messages just outside the range (and their rating) now count.
    wider = conversation_log.insights(InsightsRange(D1 - dt.timedelta(days=2),
                                                    D3 + dt.timedelta(days=1)))
    assert [day for day, _ in wider.days] == [D1 - dt.timedelta(days=2), D1 - dt.timedelta(days=1),
                                              D1, D2, D3, D3 + dt.timedelta(days=1)]
    assert wider.days[0][1] == Figures()
    assert wider.days[1][1] == figures(1, 1, 1, 1, 0, 1, 100, 100)
    assert wider.days[-1][1] == figures(1, 1, 1, 1, 0, 0, 100, 100)
    assert (wider.total.conversations, wider.total.thumbs_down) == (8, 3)


def test_an_empty_log_has_zeros(conversation_log: ConversationLog):
    found = conversation_log.insights(RANGE)
    assert found.total == Figures() and found.rows == [] and found.languages == {}
    assert found.total.satisfaction is None and found.total.voice_share is None
    assert [f for _, f in found.days] == [Figures()] * 3
    assert found.total.as_dict()["satisfaction"] is None


def test_percentiles_are_nearest_ranks_in_groups_of_every_size(
        conversation_log: ConversationLog):
    """Groups of 1 to 30 answers with many ties (latencies drawn from ten values): each group's
    p50 and p95 are the nearest ranks (`nearest_rank`), on SQLite (cume_dist) and PostgreSQL
    (percentile_disc) alike."""
    rng = random.Random(2026)
    groups = {f"g{n:02d}": [rng.randrange(1, 11) * 100 for _ in range(n)] for n in range(1, 31)}
    when = at(D1, 12)
    with conversation_log.engine.begin() as connection:
        connection.execute(insert(Conversation), [{
            "id": 1, "platform": "telegram", "bot_id": "7000001", "chat_id": "1", "user_id": "1",
            "first_message_at": when, "last_message_at": when, "message_count": 465}])
        connection.execute(insert(LogMessage), [
            {"conversation_id": 1, "direction": "out", "text": "ok", "language": language,
             "model": MODEL, "latency_ms": latency, "created_at": when}
            for language, latencies in groups.items() for latency in latencies])
    found = conversation_log.insights(RANGE).languages
    assert {language: (f.latency_p50_ms, f.latency_p95_ms) for language, f in found.items()} \
        == {language: (nearest_rank(values, 50), nearest_rank(values, 95))
            for language, values in groups.items()}


def test_percentiles_match_postgresql_percentile_disc(conversation_log: ConversationLog):
    """PostgreSQL's percentile_disc over the range's answers, asked directly, agrees with the
    grouped figures."""
    if conversation_log.dialect != "postgresql":
        pytest.skip("percentile_disc is PostgreSQL's")
    seed(conversation_log)
    with conversation_log.engine.connect() as connection:
        row = connection.execute(text(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM log_messages "
            "WHERE direction = 'out' AND model NOT LIKE 'operator:%' AND latency_ms IS NOT NULL "
            "AND created_at >= :since AND created_at < :before"),
            {"since": RANGE.since, "before": RANGE.before}).one()
    found = conversation_log.insights(RANGE).total
    assert (found.latency_p50_ms, found.latency_p95_ms) == tuple(row) == (800, 1900)


@pytest.mark.integration
def test_days_are_utc_days_whatever_the_session_time_zone(postgres_url, postgres_log):
    """A PostgreSQL session in Bangkok time (UTC+7) still counts the 23:30 UTC group turn on its
    UTC day."""
    from tests.helpers.conversation_log import empty_postgres

    if "options=" in postgres_url:
        pytest.skip("the test database is a schema chosen by connection options")
    seed(empty_postgres(postgres_log))
    bangkok = ConversationLog(postgres_url + ("&" if "?" in postgres_url else "?")
                              + "options=-ctimezone%3DAsia/Bangkok")
    try:
        with bangkok.engine.connect() as connection:
            assert connection.execute(text("SHOW timezone")).scalar() == "Asia/Bangkok"
        assert bangkok.insights(RANGE).days == postgres_log.insights(RANGE).days
        assert bangkok.insights(RANGE).days[2][1].turns == 3
    finally:
        bangkok.close()
        empty_postgres(postgres_log)


def test_a_request_for_a_person_is_a_hand_off_even_when_nobody_answers(
        conversation_log: ConversationLog):
    """A hand-off is a conversation whose person asked for a person (the marked "in" row) or
    that a person of the team answered: once a conversation and day, whichever happened."""
    s = Seeder(conversation_log)
    waiting, answered, taken, plain = (key_of("line", f"U{n}") for n in range(4))
    s.turn(waiting, at(D1, 9), language="th", model=None, answer="...", handoff=True)
    s.turn(answered, at(D1, 10), language="th", model=None, answer="...", handoff=True)
    s.operator(answered, at(D1, 11), "th")
    s.turn(taken, at(D1, 12), language="th", latency=300)
    s.operator(taken, at(D1, 13), "th")  # an admin took over without being asked
    s.turn(plain, at(D1, 14), language="th", latency=300)
    found = conversation_log.insights(RANGE)
    assert (found.total.handoffs, found.total.operator_replies) == (3, 2)
    assert found.languages["th"].handoffs == 3
    with conversation_log.session() as session:
        marked = session.scalars(select(LogMessage.direction).where(
            LogMessage.handoff == "person")).all()
    assert marked == ["in", "in"]
