"""Voice notes in the conversation log: the transcript marks the person's row as spoken, kept
audio is stored beside it (and goes with the person's data)."""

from __future__ import annotations

from storage.log import ConversationLog, TurnRecord
from tests.helpers.audio import voice_note
from tests.helpers.conversation_log import inbound, key_of


def _voice_turn(log: ConversationLog, key, transcript: str, typed: str = "",
                audio: tuple[tuple[bytes, str], ...] = ()) -> None:
    user_text = "\n".join(t for t in (typed, transcript) if t)
    assert log.record_turn(TurnRecord(
        key=key, messages=(inbound(key, typed),), user_text=user_text, reply_text="Baik!",
        language="ms", turn_id=f"t-{transcript[:8]}", transcript=transcript, audio=audio))


def test_transcript_marks_the_row_spoken_and_audio_is_kept(conversation_log: ConversationLog):
    key = key_of(user="voice-1")
    clip = voice_note(1.0)
    _voice_turn(conversation_log, key, "Apa khabar hari ini?", typed="Dengar ni",
                audio=((clip, "audio/ogg"),))
    thread = conversation_log.thread(_conversation_id(conversation_log, key))
    assert thread is not None
    inbound_row, outbound_row = thread.messages
    assert inbound_row.spoken and inbound_row.transcript == "Apa khabar hari ini?"
    assert inbound_row.text == "Dengar ni\nApa khabar hari ini?"
    assert not outbound_row.spoken and outbound_row.audio_ids == ()
    [audio_id] = inbound_row.audio_ids
    assert conversation_log.audio(audio_id) == (clip, "audio/ogg")


def test_without_keep_audio_only_the_transcript_is_logged(conversation_log: ConversationLog):
    key = key_of(user="voice-2")
    _voice_turn(conversation_log, key, "Hello there")
    thread = conversation_log.thread(_conversation_id(conversation_log, key))
    assert thread.messages[0].spoken and thread.messages[0].audio_ids == ()


def test_deleting_the_person_deletes_their_audio(conversation_log: ConversationLog):
    key = key_of(user="voice-3")
    _voice_turn(conversation_log, key, "Delete me", audio=((b"OggS-bytes", "audio/ogg"),))
    [audio_id] = conversation_log.thread(
        _conversation_id(conversation_log, key)).messages[0].audio_ids
    conversation_log.delete_person(key.platform, key.user_id)
    assert conversation_log.audio(audio_id) is None


def _conversation_id(log: ConversationLog, key) -> int:
    from sqlalchemy import select

    from storage.log.models import Conversation

    with log.session() as session:
        return session.scalar(select(Conversation.id).where(
            Conversation.platform == key.platform.value, Conversation.user_id == key.user_id))
