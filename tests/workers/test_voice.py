"""A turn's voice notes: gathered and checked (real PyAV decoding), transcribed through the real
OpenAI-compatible recogniser against the stand-in, folded into the turn's messages."""

from __future__ import annotations

import pytest

from adapters.base import MediaError, MediaTooLarge
from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    Platform,
)
from bot.kernel.texts import Text, text
from tests.helpers.audio import line_audio, voice_note
from tests.helpers.transcription_api import TranscriptionStandIn
from workers.models.speech.openai import OpenAIRecogniser
from workers.protocol import Heard, Problem
from workers.turn.hearing import fold, gather, notices, transcribe, transcript
from workers.turn.planning import plan_turn

KEY = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="9", user_id="9")


def voice(ref: str, text_: str = "", duration: float | None = None,
          hint: str | None = "en", mime_type: str = "audio/ogg") -> InboundMessage:
    return InboundMessage(key=KEY, event_id=ref, message_id=ref, text=text_, language_hint=hint,
                          attachments=(Attachment(kind=AttachmentKind.AUDIO, ref=ref,
                                                  mime_type=mime_type, duration=duration),))


FILES = {"ok": voice_note(2.0), "m4a": line_audio(3.0), "silent": voice_note(2.0, "silence"),
         "long": voice_note(8.0), "junk": b"OggS" + bytes(300)}


def fetch(attachment: Attachment) -> bytes:
    if attachment.ref == "big":
        raise MediaTooLarge("too big", 20 * 1024 * 1024)
    if attachment.ref == "gone":
        raise MediaError("404")
    return FILES[attachment.ref]


def test_gather_keeps_good_clips_and_names_every_problem() -> None:
    saved: dict[int, bytes] = {}
    messages = [voice(ref) for ref in ("ok", "silent", "long", "junk", "big", "gone")]
    messages.append(voice("m4a", mime_type="audio/m4a"))  # LINE's
    heard = gather(messages, fetch, saved.__setitem__, max_seconds=5)
    assert [h.problem for h in heard] == [None, Problem.SILENT, Problem.TOO_LONG,
                                          Problem.UNREADABLE, Problem.TOO_LARGE,
                                          Problem.UNREADABLE, None]
    assert [h.slot for h in heard if h.pending] == [0, 6]
    assert saved == {0: FILES["ok"], 6: FILES["m4a"]}
    assert heard[6].seconds == pytest.approx(3.0, abs=0.1)


def test_a_declared_length_over_the_limit_is_not_even_downloaded() -> None:
    fetched = []
    heard = gather([voice("long", duration=900)], lambda a: fetched.append(a) or b"",
                   lambda *_: None, max_seconds=300)
    assert heard[0].problem == Problem.TOO_LONG and fetched == []


@pytest.fixture()
def server():
    with TranscriptionStandIn() as stand_in:
        yield stand_in
        assert stand_in.spec_errors == []


def test_transcribe_fills_text_and_language_and_empty_is_silence(server) -> None:
    server.say(2.0, "ช่วยแนะนำร้านอาหารแถวนี้หน่อย", "th")
    server.say(3.0, "", "en")
    recogniser = OpenAIRecogniser(f"{server.base_url}/v1", "whisper")
    store = {0: FILES["ok"], 1: FILES["m4a"]}
    heard = [Heard(message=0, slot=0), Heard(message=1, slot=1, mime_type="audio/m4a"),
             Heard(message=2, problem=Problem.TOO_LONG), Heard(message=3, slot=7)]
    out = transcribe(heard, store.get, recogniser, max_seconds=300)
    assert out[0].text == "ช่วยแนะนำร้านอาหารแถวนี้หน่อย" and out[0].language == "th"
    assert out[1].problem == Problem.SILENT
    assert out[2] == heard[2]
    assert out[3].problem == Problem.UNREADABLE  # expired from Redis before it was heard


@pytest.mark.integration
def test_recogniser_down_is_a_failure_not_a_crash() -> None:
    recogniser = OpenAIRecogniser("http://127.0.0.1:9/v1", "whisper", timeout=2)
    [out] = transcribe([Heard(message=0, slot=0)], {0: FILES["ok"]}.get, recogniser, 300)
    assert out.problem == Problem.FAILED


def test_fold_joins_text_and_transcript_and_hints_the_heard_language() -> None:
    photo = Attachment(ref="p1", mime_type="image/jpeg")
    typed = InboundMessage(key=KEY, event_id="a", message_id="a", text="Lihat foto ini",
                           attachments=(photo,), language_hint="en")
    spoken = voice("v", text_="caption")
    heard = [Heard(message=1, slot=0, text="Ini durian dari pasar, sudah matang belum?",
                   language="id")]
    first, second = fold([typed, spoken], heard)
    assert first == typed
    assert second.text == "caption\nIni durian dari pasar, sudah matang belum?"
    assert second.language_hint == "id" and second.attachments == ()
    assert transcript(heard) == "Ini durian dari pasar, sudah matang belum?"
    plan = plan_turn("t1", [first, second], current_language=None, default_language="en")
    assert plan.language == "id"
    assert "Ini durian dari pasar" in plan.user_text and plan.attachments == (photo,)


def test_the_transcript_outweighs_a_stale_hint() -> None:
    heard = [Heard(message=0, slot=0, text="Xin chào, hôm nay trời thế nào?", language="vi")]
    [message] = fold([voice("v", hint="en")], heard)
    assert plan_turn("t", [message], current_language="en",
                     default_language="en").language == "vi"


def test_a_failed_voice_note_leaves_no_text_and_a_notice_in_the_language() -> None:
    heard = [Heard(message=0, problem=Problem.SILENT), Heard(message=0, problem=Problem.SILENT),
             Heard(message=0, problem=Problem.TOO_LONG), Heard(message=0, problem=Problem.FAILED),
             Heard(message=0, problem=Problem.TOO_LARGE, limit_bytes=20 * 1024 * 1024)]
    [message] = fold([voice("v", hint="th")], heard)
    assert message.text == "" and message.attachments == ()
    assert notices(heard, "th", 300) == [
        text(Text.AUDIO_SILENT, "th"), text(Text.AUDIO_TOO_LONG, "th", minutes="5"),
        text(Text.APOLOGY, "th"), text(Text.FILE_TOO_LARGE, "th", limit_mb=20)]
    assert "1.5" in notices([Heard(message=0, problem=Problem.TOO_LONG)], "en", 90)[0]
