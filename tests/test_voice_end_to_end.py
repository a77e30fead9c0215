"""Voice notes, end to end: webhook -> Redis and the Celery worker -> download and PyAV decoding
-> the OpenAI-compatible recogniser (the transcription stand-in, which answers a known
transcript for each clip length) -> the tiny chat model -> the platform stand-in.

The audio is real: OGG/Opus voice notes for Telegram and WhatsApp and M4A/AAC for LINE, made by
the tests with PyAV. The chat model's random answer is noise, so the reply language is read
where the turn recorded it (the history's language and the system prompt it chose)."""

from __future__ import annotations

import copy
import itertools

import redis

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from storage.log import ConversationLog
from tests.conftest import TELEGRAM_TOKEN, WHATSAPP_PHONE_ID, new_chat_id
from tests.helpers.audio import line_audio, voice_note
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import _fresh
from tests.helpers.waiting import wait_replies
from tests.test_line_end_to_end import new_user
from tests.test_line_end_to_end import wait_texts as wait_line
from tests.test_whatsapp_end_to_end import new_wa_id
from tests.test_whatsapp_end_to_end import wait_texts as wait_whatsapp

BOT_ID = TELEGRAM_TOKEN.split(":")[0]
_files = itertools.count(1)

THAI = "ช่วยแนะนำร้านข้าวมันไก่อร่อยๆ แถวสยามหน่อยได้ไหมครับ"
MALAY = "Boleh terangkan cara membuat nasi lemak yang sedap untuk sarapan esok pagi?"
VIETNAMESE = "Cho tôi hỏi đường từ Hồ Gươm đến Văn Miếu đi như thế nào vậy?"


def voice_update(chat: int, data: bytes, **fields) -> dict:
    """A Telegram voice note from `chat` whose file the stand-in serves."""
    update = _fresh("voice", chat, **fields)
    file_id = f"voice-{next(_files)}"
    update["message"]["voice"].update(file_id=file_id, file_unique_id=f"u{file_id}",
                                      file_size=len(data))
    return update, file_id


def history(service, key: ConversationKey):
    return RedisHistory(redis.Redis.from_url(service.redis_url), ttl=3600, max_turns=50).load(key)


def telegram_key(chat: int) -> ConversationKey:
    return ConversationKey(platform=Platform.TELEGRAM, bot_id=BOT_ID, chat_id=str(chat),
                           user_id=str(chat))


def logged_rows(service, key: ConversationKey):
    log = ConversationLog(service.settings.database_url)
    try:
        row = next(r for r in log.list_conversations().rows
                   if r.platform == key.platform.value and r.chat_id == key.chat_id)
        return log.thread(row.id).messages
    finally:
        log.close()


def send_voice(service, telegram, chat: int, data: bytes, **fields) -> None:
    update, file_id = voice_update(chat, data, **fields)
    telegram.add_file(file_id, data, file_path=f"voice/{file_id}.oga")
    assert service.post_update(update).status_code == 200


def test_telegram_voice_note_is_heard_answered_once_and_remembered(qwen_service, telegram,
                                                                   transcription):
    chat = new_chat_id()
    transcription.say(2.4, THAI, "th")
    send_voice(qwen_service, telegram, chat, voice_note(2.4))
    [reply] = wait_replies(telegram, chat, 1)
    assert reply.params["text"].strip()
    [call] = transcription.calls_to("transcriptions")
    assert (call.sample_rate, call.channels) == (16000, 1)
    assert abs(call.seconds - 2.4) < 0.1

    key = telegram_key(chat)
    user, assistant = history(qwen_service, key)
    # The transcript is the person's turn, marked spoken, and the reply language is Thai.
    assert (user.role, user.text, user.spoken, user.language) == ("user", THAI, True, "th")
    assert assistant.role == "assistant" and assistant.language == "th"
    inbound = logged_rows(qwen_service, key)[0]
    assert inbound.spoken and inbound.transcript == THAI and inbound.language == "th"
    assert inbound.audio_ids == ()  # ASR_KEEP_AUDIO is off: the audio is gone

    # A typed follow-up is answered with the spoken turn in its history.
    qwen_service.post_update(_fresh("text_private", chat, text="แล้วร้านไหนเปิดดึกบ้างครับ"))
    wait_replies(telegram, chat, 2)
    entries = history(qwen_service, key)
    assert [e.role for e in entries] == ["user", "assistant", "user", "assistant"]
    assert entries[0].text == THAI and entries[0].spoken and not entries[2].spoken
    assert entries[2].language == "th"


def test_whatsapp_voice_note_two_step_media_fetch(qwen_service, whatsapp, transcription):
    wa_id = new_wa_id()
    media_id = f"{next(_files)}0001"
    whatsapp.add_media(media_id, voice_note(3.1), mime_type="audio/ogg; codecs=opus")
    transcription.say(3.1, MALAY, "ms")
    body = whatsapp_message("audio", wa_id, audio={"id": media_id})
    assert qwen_service.post_whatsapp(body).status_code == 200
    [answer] = wait_whatsapp(whatsapp, wa_id, 1)
    assert answer.strip()
    [info] = whatsapp.calls_to("media_info")
    [download] = whatsapp.calls_to("media_download")
    assert download.headers["authorization"] == info.headers["authorization"]
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id=WHATSAPP_PHONE_ID, chat_id=wa_id,
                          user_id=wa_id)
    [user, _] = history(qwen_service, key)
    assert user.text == MALAY and user.spoken and user.language == "ms"


def test_line_audio_message_m4a(qwen_service, line, transcription):
    user = new_user()
    body = line_event("audio", user, reply_token=line.issue_reply_token(user), duration=2700)
    line.add_content(body["events"][0]["message"]["id"], line_audio(2.7),
                     content_type="audio/x-m4a")
    transcription.say(2.7, VIETNAMESE, "vi")
    assert qwen_service.post_line(body).status_code == 200
    [answer] = wait_line(line, user, 1)
    assert answer.strip() and len(line.calls_to("content")) == 1
    key = ConversationKey(platform=Platform.LINE, bot_id=body["destination"], chat_id=user,
                          user_id=user)
    [spoken, _] = history(qwen_service, key)
    assert spoken.text == VIETNAMESE and spoken.spoken and spoken.language == "vi"


def test_voice_with_a_caption_is_one_turn(qwen_service, telegram, transcription):
    chat = new_chat_id()
    transcription.say(1.8, "Saya mahu pergi ke Kuala Lumpur esok pagi dengan keluarga.", "ms")
    send_voice(qwen_service, telegram, chat, voice_note(1.8), caption="Tolong rancang perjalanan")
    wait_replies(telegram, chat, 1)
    [user, _] = history(qwen_service, telegram_key(chat))
    assert user.text == ("Tolong rancang perjalanan\n"
                         "Saya mahu pergi ke Kuala Lumpur esok pagi dengan keluarga.")
    assert user.spoken and user.language == "ms"


def test_silence_corrupt_and_empty_transcripts_get_a_polite_note_in_the_language(
        qwen_service, telegram, transcription):
    # The fixture's person writes Telegram in Thai (language_code "th").
    cases = [(voice_note(2.0, "silence"), Text.AUDIO_SILENT),
             (b"OggS" + bytes(4000), Text.AUDIO_UNREADABLE),
             (voice_note(1.3, "noise"), Text.AUDIO_SILENT)]  # the recogniser hears nothing
    transcription.say(1.3, "", "th")
    for data, expected in cases:
        chat = new_chat_id()
        send_voice(qwen_service, telegram, chat, data)
        [reply] = wait_replies(telegram, chat, 1)
        assert reply.params["text"] == text(expected, "th")
        assert history(qwen_service, telegram_key(chat)) == []
    assert [round(c.seconds, 1) for c in transcription.calls_to("transcriptions")] == [1.3]


def test_a_clip_over_the_limit_gets_a_polite_note(qwen_service, whatsapp, line, transcription):
    # Declared too long by LINE: not even downloaded.
    user = new_user()
    body = line_event("audio", user, reply_token=line.issue_reply_token(user), duration=900_000)
    line.set_profile(user, language="id")
    assert qwen_service.post_line(body).status_code == 200
    [note] = wait_line(line, user, 1)
    assert note == text(Text.AUDIO_TOO_LONG, "id", minutes="5")
    assert line.calls_to("content") == []
    # Found too long while decoding (WhatsApp declares no duration).
    wa_id = new_wa_id()
    media_id = f"{next(_files)}0002"
    whatsapp.add_media(media_id, voice_note(305.0, "noise"), mime_type="audio/ogg; codecs=opus")
    body = whatsapp_message("audio", wa_id, audio={"id": media_id})
    assert qwen_service.post_whatsapp(copy.deepcopy(body)).status_code == 200
    [note] = wait_whatsapp(whatsapp, wa_id, 1)
    # WhatsApp tells no language and nothing was said: the default language.
    assert note == text(Text.AUDIO_TOO_LONG, "en", minutes="5")
    assert transcription.calls_to("transcriptions") == []
