"""Ratings in the conversation log (#23): a 👍/👎 is stored against the answer it was given on
(by the button's turn id, or by the platform message id of any part the answer went out in), a
second rating replaces the first, a removed reaction removes it, unknown answers are ignored,
erasure and retention take ratings with their answers; the thread shows them, the list filters
by them, and the rated pairs export without personal data. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from storage.log import ConversationFilter, ConversationLog, TurnRecord
from storage.log.models import AnswerPart, Rating
from tests.helpers.conversation_log import find_conversation, inbound, key_of, turn


def _answered(conversation_log: ConversationLog, key, question: str, answer: str,
              turn_id: str, parts: tuple[str, ...] = (), language: str = "th") -> None:
    assert conversation_log.record_turn(TurnRecord(
        key=key, messages=(inbound(key, question),), user_text=question, reply_text=answer,
        language=language, turn_id=turn_id, answer_parts=parts))


def _ratings(conversation_log: ConversationLog) -> list[tuple[int, str]]:
    with conversation_log.session() as session:
        return [(r.rating, r.source) for r in session.scalars(select(Rating)).all()]


def _answer_id(conversation_log: ConversationLog, key, turn_id: str) -> int:
    thread = conversation_log.thread(find_conversation(conversation_log, key).id)
    return next(m.id for m in thread.messages if m.direction == "out"
                and m.text.startswith(turn_id))


def test_a_button_rates_its_turns_answer_and_a_second_rating_replaces_it(conversation_log):
    key = key_of("telegram", "501")
    _answered(conversation_log, key, "q1", "t1 answer", "t1")
    _answered(conversation_log, key, "q2", "t2 answer", "t2")
    rated = conversation_log.rate(key, -1, "button", turn_id="t1")
    assert rated is not None and rated.value == -1
    assert rated.message_id == _answer_id(conversation_log, key, "t1")
    assert conversation_log.rate(key, 1, "button", turn_id="t1").value == 1
    assert _ratings(conversation_log) == [(1, "button")]
    assert conversation_log.rating_of(_answer_id(conversation_log, key, "t1")) == 1
    assert conversation_log.rating_of(_answer_id(conversation_log, key, "t2")) == 0
    with conversation_log.session() as session:
        row = session.scalars(select(Rating)).one()
        assert row.platform == "telegram" and row.language == "th"
        assert row.updated_at >= row.created_at


def test_a_reaction_finds_the_answer_by_any_of_its_parts(conversation_log):
    key = key_of("whatsapp", "6591234567")
    _answered(conversation_log, key, "q", "t1 long answer", "t1", parts=("wamid.A", "wamid.B"))
    _answered(conversation_log, key, "q", "t2 answer", "t2", parts=("wamid.C",))
    assert conversation_log.rate(key, 1, "reaction", platform_message_id="wamid.A").value == 1
    rated = conversation_log.rate(key, -1, "reaction", platform_message_id="wamid.B")
    assert rated.message_id == _answer_id(conversation_log, key, "t1")
    assert _ratings(conversation_log) == [(-1, "reaction")]
    # Removed: the rating goes.
    assert conversation_log.rate(key, 0, "reaction", platform_message_id="wamid.B").value == 0
    assert _ratings(conversation_log) == []


def test_unknown_answers_are_ignored(conversation_log):
    key = key_of("telegram", "501")
    _answered(conversation_log, key, "q", "t1 answer", "t1", parts=("11",))
    assert conversation_log.rate(key, 1, "button", turn_id="nope") is None
    assert conversation_log.rate(key, 1, "reaction", platform_message_id="12") is None
    # Another person's conversation cannot rate this answer.
    assert conversation_log.rate(key_of("telegram", "502"), 1, "button", turn_id="t1") is None
    assert conversation_log.rate(key_of("telegram", "502"), 1, "reaction",
                                 platform_message_id="11") is None
    assert _ratings(conversation_log) == []


def test_erasure_takes_ratings_and_parts_with_the_answers(conversation_log):
    key = key_of("telegram", "501")
    other = key_of("telegram", "777")
    _answered(conversation_log, key, "q", "t1 answer", "t1", parts=("11",))
    _answered(conversation_log, other, "q", "t9 answer", "t9", parts=("90",))
    assert conversation_log.rate(key, -1, "button", turn_id="t1") is not None
    assert conversation_log.rate(other, 1, "reaction", platform_message_id="90") is not None
    conversation_log.delete_person("telegram", "501")
    assert _ratings(conversation_log) == [(1, "reaction")]
    with conversation_log.session() as session:
        assert session.scalar(select(func.count()).select_from(AnswerPart)) == 1
    assert conversation_log.rate(key, 1, "button", turn_id="t1") is None  # erased: ignored


def test_retention_takes_old_ratings(conversation_log):
    key = key_of("telegram", "501")
    turn(conversation_log, key, "old", "old answer", turn_id="old",
         at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    assert conversation_log.rate(key, 1, "button", turn_id="old") is not None
    conversation_log.purge_older_than(30)
    assert _ratings(conversation_log) == []


def test_thread_shows_ratings_and_the_list_filters_by_them(conversation_log):
    up, down, none = key_of("telegram", "1"), key_of("line", "2"), key_of("whatsapp", "3")
    for key in (up, down, none):
        _answered(conversation_log, key, "q", "t answer", "t")
    conversation_log.rate(up, 1, "button", turn_id="t")
    conversation_log.rate(down, -1, "reaction", turn_id="t")
    thread = conversation_log.thread(find_conversation(conversation_log, down).id)
    [answer] = [m for m in thread.messages if m.direction == "out"]
    [question] = [m for m in thread.messages if m.direction == "in"]
    assert (answer.rating, answer.rating_source) == (-1, "reaction")
    assert question.rating == 0
    rated_down = conversation_log.list_conversations(ConversationFilter(rated=-1))
    assert [r.platform for r in rated_down.rows] == ["line"]
    rated_up = conversation_log.list_conversations(ConversationFilter(rated=1))
    assert [r.platform for r in rated_up.rows] == ["telegram"]
    assert conversation_log.list_conversations(ConversationFilter()).total == 3


def test_rated_pairs_export_without_personal_data(conversation_log):
    key = key_of("telegram", "424242")
    conversation_log.record_turn(TurnRecord(
        key=key, messages=(inbound(key, "Apa itu SEA-LION?", name="Siti Rahman"),),
        user_text="Apa itu SEA-LION?", reply_text="Model bahasa.", language="id",
        turn_id="t1", answer_parts=("wamid.HBgLNjU5ODc2",)))
    _answered(conversation_log, key, "unrated", "t2 answer", "t2")
    conversation_log.rate(key, -1, "button", turn_id="t1")
    [pair] = list(conversation_log.rated_pairs())
    assert set(pair) == {"prompt", "answer", "language", "rating", "source", "platform", "time"}
    assert pair["prompt"] == "Apa itu SEA-LION?" and pair["answer"] == "Model bahasa."
    assert (pair["language"], pair["rating"], pair["platform"]) == ("id", -1, "telegram")
    flat = repr(pair)  # (identifiers no timestamp can contain)
    for personal in ("424242", "Siti", "wamid.HBgLNjU5ODc2"):  # the chat, the name, a part id
        assert personal not in flat, (personal, pair)


def test_the_export_is_one_statement_and_pairs_each_answer_with_its_own_question(
        conversation_log):
    """However many pairs, one SELECT (a correlated subquery finds each question); each answer
    gets the words of its own turn, not a later or another conversation's question."""
    from sqlalchemy import event

    keys = [key_of("telegram", str(700 + n)) for n in range(6)]
    for n, key in enumerate(keys):
        _answered(conversation_log, key, f"question {n}.1", f"answer {n}.1", f"t{n}.1")
        _answered(conversation_log, key, f"question {n}.2", f"answer {n}.2", f"t{n}.2")
        conversation_log.rate(key, 1 if n % 2 else -1, "button", turn_id=f"t{n}.1")
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(conversation_log.engine, "before_cursor_execute", count)
    try:
        pairs = list(conversation_log.rated_pairs())
    finally:
        event.remove(conversation_log.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    assert [(p["prompt"], p["answer"], p["rating"]) for p in pairs] == [
        (f"question {n}.1", f"answer {n}.1", 1 if n % 2 else -1) for n in range(6)]
