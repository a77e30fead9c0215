"""Guard decisions in the conversation log (SQLite and PostgreSQL): stored with each side of the
turn, shown in the thread, and found by the console's flagged filter."""

from __future__ import annotations

from storage.log import ConversationFilter, ConversationLog, GuardRecord, TurnRecord
from tests.helpers.conversation_log import inbound, key_of, turn


def test_decisions_are_stored_with_the_turn_and_flagged_conversations_found(
        conversation_log: ConversationLog):
    calm, rude, refused, blocked = (key_of("telegram", u) for u in ("601", "602", "603", "604"))
    turn(conversation_log, calm, "Apa khabar?", "Baik!")
    assert conversation_log.record_turn(TurnRecord(
        key=rude, messages=(inbound(rude, "how do I hurt someone"),),
        reply_text="Sorry, I can't help with that.", language="en", turn_id="t-rude",
        input_guard=GuardRecord("unsafe", ("Violent",), 42)))
    assert conversation_log.record_turn(TurnRecord(
        key=refused, messages=(inbound(refused, "tell me a story"),),
        reply_text="Sorry, I can't help with that.", language="en", turn_id="t-out",
        input_guard=GuardRecord("safe", (), 10),
        output_guard=GuardRecord("controversial", ("Politically Sensitive Topics", "PII"), 55),
        withheld="the flagged answer"))
    assert conversation_log.record_turn(TurnRecord(
        key=blocked, messages=(inbound(blocked, "spam spam"),), turn_id="t-blocked",
        input_guard=GuardRecord("blocked")))

    flagged = conversation_log.list_conversations(ConversationFilter(flagged=True))
    assert {r.user_id for r in flagged.rows} == {"602", "603", "604"}
    assert flagged.total == 3
    both = conversation_log.list_conversations(ConversationFilter(flagged=True, search="story"))
    assert [r.user_id for r in both.rows] == ["603"]

    [question, answer] = conversation_log.thread(
        next(r.id for r in flagged.rows if r.user_id == "603")).messages
    assert (question.guard_label, question.guard_latency_ms, question.flagged) == \
        ("safe", 10, False)
    assert (answer.guard_label, answer.guard_categories, answer.guard_latency_ms) == \
        ("controversial", "Politically Sensitive Topics, PII", 55)
    assert answer.flagged and answer.guard_withheld == "the flagged answer"
    assert answer.text == "Sorry, I can't help with that."
    [only] = conversation_log.thread(
        next(r.id for r in flagged.rows if r.user_id == "604")).messages
    assert (only.direction, only.guard_label, only.text) == ("in", "blocked", "spam spam")
    calm_row = conversation_log.list_conversations(ConversationFilter(search="khabar")).rows[0]
    assert all(m.guard_label is None for m in conversation_log.thread(calm_row.id).messages)


def test_exports_carry_the_guard_decisions(conversation_log: ConversationLog):
    key = key_of("whatsapp", "6591110000")
    conversation_log.record_turn(TurnRecord(
        key=key, messages=(inbound(key, "a rude question"),), reply_text="No.", turn_id="t",
        input_guard=GuardRecord("unsafe", ("Violent", "PII"), 30)))
    rows = list(conversation_log.export_rows(ConversationFilter(flagged=True)))
    assert [(r["direction"], r["guard_label"], r["guard_categories"]) for r in rows] == [
        ("in", "unsafe", "Violent, PII"), ("out", None, None)]
