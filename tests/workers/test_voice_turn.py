"""A voice note through the turn service's steps, on a real Redis and SQLite log, with the real
OpenAI-compatible recogniser against the transcription stand-in and a scripted chat engine:
what the chat model is asked, what the history and the log keep, and where the audio goes."""

from __future__ import annotations

import asyncio

import pytest
import redis

from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    Platform,
    TelegramContext,
)
from bot.kernel.settings import Settings
from bot.kernel.texts import REPLY_INSTRUCTION
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.inbox import Inbox
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from storage.voice import VoiceNotes
from tests.conftest import new_chat_id
from tests.helpers.audio import voice_note
from tests.helpers.transcription_api import TranscriptionStandIn
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.models.speech.openai import OpenAIRecogniser
from workers.protocol import Generate, Idle, Transcribe, VoiceNote
from workers.turn import TurnService, assemble

KHMER = "សួស្តី តើថ្ងៃនេះអាកាសធាតុនៅភ្នំពេញយ៉ាងម៉េចដែរ?"
CLIP = voice_note(2.2)


class MediaAdapter(RecordingAdapter):
    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        return CLIP


@pytest.fixture()
def world(redis_server, tmp_path):
    client = redis.Redis.from_url(redis_server.url[:-2] + "/12")
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    store = ConversationStore(client, lease_seconds=30)
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()
    server = TranscriptionStandIn().start()
    server.say(2.2, KHMER, "km")
    engine = ScriptedEngine("ថ្ងៃនេះមានពពក", "Second answer")
    voice = VoiceNotes(client, ttl=600)

    def build(**settings: object) -> TurnService:
        config = Settings(redis_url=redis_server.url[:-2] + "/12", database_url=database_url,
                          reply_language_check=False, **settings)
        recogniser = OpenAIRecogniser(f"{server.base_url}/v1", "whisper")
        return assemble(config, store=store, history=RedisHistory(client, ttl=600,
                                                                  max_turns=20),
                        conversation_log=log, metrics=RedisMetrics(client),
                        adapters=lambda platform: MediaAdapter(config),
                        engine=lambda: engine, run=loop.run_until_complete,
                        leases=LeaseKeeper(store, max_hold_seconds=60),
                        recogniser=lambda: recogniser, voice=voice)

    yield {"build": build, "client": client, "engine": engine, "log": log, "voice": voice,
           "server": server, "inbox": Inbox(client, dedupe_ttl=60, pending_ttl=60)}
    server.stop()
    assert server.spec_errors == []
    loop.close()
    log.close()
    client.flushdb()
    client.close()


def speak(world) -> ConversationKey:
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    world["inbox"].accept(InboundMessage(
        key=key, event_id=f"{chat}-v", message_id="7", language_hint="en",
        attachments=(Attachment(kind=AttachmentKind.AUDIO, ref="voice-1",
                                mime_type="audio/ogg"),),
        reply_context=TelegramContext(chat_id=int(chat), message_id=1)))
    return key


def through(service: TurnService, key: ConversationKey) -> Generate:
    step = service.start(key)
    assert isinstance(step, Transcribe)
    heard = service.transcribe(step.job)
    assert [h.text for h in heard] == [KHMER]
    generate = service.after_hearing(step.job, heard)
    assert isinstance(generate, Generate)
    service.deliver(generate.turn, generate.lease, service.generate(generate.job))
    return generate


def test_the_chat_model_is_asked_the_transcript_in_its_language(world):
    service = world["build"]()
    key = speak(world)
    step = through(service, key)
    [request] = world["engine"].requests
    assert request.turns[-1].role == "user" and request.turns[-1].text == KHMER
    assert request.system.endswith(REPLY_INSTRUCTION["km"])  # Telegram said "en"; they spoke Khmer
    [user, answer] = RedisHistory(world["client"], ttl=600, max_turns=20).load(key)
    assert (user.text, user.spoken, user.language) == (KHMER, True, "km")
    assert not answer.spoken
    row = world["log"].list_conversations().rows[0]
    inbound = world["log"].thread(row.id).messages[0]
    assert inbound.transcript == KHMER and inbound.audio_ids == ()
    # Heard and logged: the audio is gone from Redis.
    assert step.turn.voice.notes == (VoiceNote(slot=0, mime_type="audio/ogg"),)
    assert world["voice"].load(step.turn.turn_id, 0) is None


def test_keep_audio_puts_the_voice_note_in_the_log(world):
    service = world["build"](asr_keep_audio=True)
    step = through(service, speak(world))
    row = world["log"].list_conversations().rows[0]
    [audio_id] = world["log"].thread(row.id).messages[0].audio_ids
    assert world["log"].audio(audio_id) == (CLIP, "audio/ogg")
    assert world["voice"].load(step.turn.turn_id, 0) is None  # Redis keeps it no longer


def test_a_continuation_after_the_turn_moved_on_does_nothing(world):
    service = world["build"]()
    key = speak(world)
    step = service.start(key)
    assert isinstance(step, Transcribe)
    heard = service.transcribe(step.job)
    # The lease lapsed meanwhile and the turn was taken up again (a new epoch).
    world["client"].delete(f"sealion:conv:{key.as_path()}:turn")
    again = service.start(key)
    assert isinstance(again, Transcribe) and again.job.lease != step.job.lease
    assert isinstance(service.after_hearing(step.job, heard), Idle)
    assert world["engine"].requests == []


def test_whisper_in_process_hears_for_the_turn(world, tmp_path):
    """The transformers backend as the inference worker runs it: a tiny random Whisper behind
    the batcher; its words are noise, and they are what the chat model is asked."""
    import torch

    from tests.helpers.whisper import build_tiny_whisper
    from workers.models.speech.transformers import TransformersRecogniser

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whisper = TransformersRecogniser(
            str(build_tiny_whisper(tmp_path / "whisper", max_new_tokens=8)), device="cpu")
        service = world["build"]()
        service.stages.hearing._recogniser = lambda: whisper
        key = speak(world)
        step = service.start(key)
        assert isinstance(step, Transcribe)
        [heard] = service.transcribe(step.job)
        assert heard.text and heard.problem is None
        generate = service.after_hearing(step.job, [heard])
        assert isinstance(generate, Generate)
        assert generate.job.turns[-1].text == heard.text
        assert generate.turn.voice.transcript == heard.text
    finally:
        torch.set_num_threads(threads)
