"""The reply-language check: one regeneration, with a firmer instruction, when an answer is
confidently in the wrong language. The engine is a stand-in for this unit only, because a
random-weight model cannot be made to answer in a chosen language."""

from __future__ import annotations

import redis

from bot.composition import Services
from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from bot.kernel.settings import Settings
from bot.kernel.texts import REPLY_INSTRUCTION
from storage.inbox import Inbox
from tests.conftest import new_chat_id
from tests.workers.doubles import ScriptedEngine
from workers.protocol import GenerationJob, JobTurn


def runtime_with(engine, redis_server, **settings) -> Services:
    rt = Services(Settings(redis_url=redis_server.url[:-2] + "/13", **settings))
    rt.models.chat = engine
    return rt


def current_turn(rt: Services) -> tuple[ConversationKey, str]:
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    Inbox(rt.redis, dedupe_ttl=60, pending_ttl=60).accept(
        InboundMessage(key=key, event_id=f"e{chat}", message_id="1", text="สวัสดีครับ"))
    lease = rt.conversations.take_turn(key).lease
    assert lease is not None
    return key, lease


def request_for(key, lease, language="th") -> GenerationJob:
    return GenerationJob(
        turn_id=lease.rsplit(".", 1)[0], lease=lease, key=key, system="Be kind.",
        turns=(JobTurn(role="user", text="ช่วยแนะนำอาหารไทยหน่อยครับ"),), max_new_tokens=64,
        language=language)


def stats(rt) -> int:
    return int(sum(rt.metrics.counter("regenerations").values()))


def test_wrong_language_answer_is_generated_again_with_a_firmer_instruction(redis_server):
    engine = ScriptedEngine("Sure! Here are some famous Thai dishes you should try today.",
                            "แนะนำต้มยำกุ้งและผัดไทยครับ อร่อยมาก")
    rt = runtime_with(engine, redis_server)
    before = stats(rt)
    key, turn = current_turn(rt)
    result = rt.turns.generate(request_for(key, turn))
    assert result.text == "แนะนำต้มยำกุ้งและผัดไทยครับ อร่อยมาก"
    assert len(engine.requests) == 2
    firmer = engine.requests[1]
    assert REPLY_INSTRUCTION["th"] in firmer.system
    assert firmer.turns[-1].text.endswith(f"({REPLY_INSTRUCTION['th']})")
    assert stats(rt) == before + 1


def test_right_language_short_or_disabled_means_one_generation(redis_server):
    for answer, settings in [("ต้มยำกุ้งอร่อยที่สุดครับ ลองทานดูนะ", {}),
                             ("OK!", {}),
                             ("Sure! Here are some famous Thai dishes you should try.",
                              {"reply_language_check": False})]:
        engine = ScriptedEngine(answer)
        rt = runtime_with(engine, redis_server, **settings)
        key, turn = current_turn(rt)
        assert rt.turns.generate(request_for(key, turn)).text == answer
        assert len(engine.requests) == 1


def test_a_finished_turn_is_not_generated_again(redis_server):
    engine = ScriptedEngine()
    rt = runtime_with(engine, redis_server)
    key, turn = current_turn(rt)
    rt.conversations.finish_turn(key, turn)
    assert rt.turns.generate(request_for(key, turn)).skipped
    assert engine.requests == []
    redis.Redis.from_url(rt.settings.effective_redis_url).flushdb()
