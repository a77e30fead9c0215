"""Abuse controls on the in-memory twin of Redis: the token bucket script, the block list,
the backlog."""

from __future__ import annotations

import itertools
import time

import pytest

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.abuse import Backlog, BlockList, RateDecision, RateLimiter, person_of

_events = itertools.count(1)


def message(user: str = "42", chat: str | None = None, platform: Platform = Platform.TELEGRAM,
            event: str | None = None) -> InboundMessage:
    key = ConversationKey(platform=platform, bot_id="7", chat_id=chat or user,
                          user_id=user if chat is None else "")
    return InboundMessage(key=key, event_id=event or f"e{next(_events)}", message_id="1",
                          text="hi")


def test_bucket_allows_the_limit_then_notices_once_per_window(client):
    limiter = RateLimiter(client, messages=3, window_seconds=60)
    decisions = [limiter.check(message()) for _ in range(6)]
    assert decisions[:3] == [RateDecision.OK] * 3
    assert decisions[3] is RateDecision.LIMITED_NOTICE
    assert decisions[4:] == [RateDecision.LIMITED] * 2
    # Another person has a bucket of their own.
    assert limiter.check(message(user="43")) is RateDecision.OK


def test_a_redelivered_message_spends_no_second_token(client):
    limiter = RateLimiter(client, messages=2, window_seconds=60)
    first = message(event="same")
    assert [limiter.check(first) for _ in range(5)] == [RateDecision.OK] * 5
    assert limiter.check(message()) is RateDecision.OK
    assert limiter.check(message()) is RateDecision.LIMITED_NOTICE
    # The same limited event keeps its decision: the notice is not sent twice for it.
    limited = message(event="late")
    assert limiter.check(limited) is RateDecision.LIMITED
    assert limiter.check(limited) is RateDecision.LIMITED


def test_tokens_refill_with_time(client):
    limiter = RateLimiter(client, messages=2, window_seconds=1)
    assert [limiter.check(message()) for _ in range(3)] == [
        RateDecision.OK, RateDecision.OK, RateDecision.LIMITED_NOTICE]
    time.sleep(0.6)  # 2 tokens a second: one is back
    assert limiter.check(message()) is RateDecision.OK
    assert limiter.check(message()) is not RateDecision.OK


def test_zero_messages_is_no_limit(client):
    limiter = RateLimiter(client, messages=0, window_seconds=60)
    assert all(limiter.check(message()) is RateDecision.OK for _ in range(50))
    assert client.keys("sealion:rate:*") == []


def test_group_members_are_limited_one_by_one(client):
    limiter = RateLimiter(client, messages=1, window_seconds=60)
    base = message(chat="-100")
    alice = base.model_copy(update={"sender_id": "alice"})
    bob = base.model_copy(update={"sender_id": "bob", "event_id": "b1"})
    assert person_of(alice) == "alice" and person_of(base) == "-100"
    assert limiter.check(alice) is RateDecision.OK
    assert limiter.check(bob) is RateDecision.OK


def test_block_list(client):
    blocklist = BlockList(client)
    assert not blocklist.blocks(message(user="9"))
    blocklist.block(Platform.LINE, "U9", note="spam")
    blocklist.block("telegram", "9")
    assert blocklist.blocks(message(user="9"))
    assert blocklist.is_blocked(Platform.LINE, "U9")
    assert not blocklist.blocks(message(user="9", platform=Platform.WHATSAPP))
    people = blocklist.all()
    assert [(p.platform, p.person) for p in people] == [(Platform.TELEGRAM, "9"),
                                                        (Platform.LINE, "U9")]
    assert people[1].note == "spam"
    assert blocklist.unblock("telegram", "9") and not blocklist.unblock("telegram", "9")
    assert not blocklist.blocks(message(user="9"))
    with pytest.raises(ValueError):
        blocklist.block("telegram", "")


def test_backlog_oldest_age_and_notice_once(client):
    backlog = Backlog(client, stale_after=60)
    assert backlog.oldest_age() == 0
    backlog.add("t1", at=time.time() - 5)
    backlog.add("t2")
    assert 4.5 < backlog.oldest_age() < 6
    backlog.done("t1")
    assert backlog.oldest_age() < 1
    backlog.add("dead", at=time.time() - 120)  # a turn whose worker died: forgotten
    assert backlog.oldest_age() < 1
    key = message().key
    assert backlog.notice_once(key, 30) and not backlog.notice_once(key, 30)
