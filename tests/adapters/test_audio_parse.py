"""Voice notes and audio on each platform: an audio attachment when speech recognition is on,
the polite "can't listen" notice when ASR_BACKEND=off."""

from __future__ import annotations

import json

import pytest

from adapters.line import LineAdapter
from adapters.telegram import TelegramAdapter
from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.messages import AttachmentKind, MessageKind
from bot.kernel.settings import Settings
from tests.helpers.payloads import load
from tests.helpers.updates import load as load_update

REDIS = "redis://127.0.0.1:1/0"


def telegram(asr: str) -> TelegramAdapter:
    return TelegramAdapter(Settings(telegram_bot_token="7000001:abc", redis_url=REDIS,
                                    asr_backend=asr), username="sealion_test_bot")


def whatsapp(asr: str) -> WhatsAppAdapter:
    return WhatsAppAdapter(Settings(whatsapp_access_token="t", whatsapp_app_secret="s",
                                    whatsapp_phone_number_id="106540352242922",
                                    redis_url=REDIS, asr_backend=asr))


def line(asr: str) -> LineAdapter:
    return LineAdapter(Settings(line_channel_secret="0" * 32, line_channel_access_token="t",
                                redis_url=REDIS, asr_backend=asr))


def test_telegram_voice_note() -> None:
    [message] = telegram("transformers").parse(json.dumps(load_update("voice")).encode())
    assert message.kind == MessageKind.CHAT and message.text == ""
    [audio] = message.attachments
    assert audio.kind == AttachmentKind.AUDIO and audio.ref == "AwACAgUAAxkBAAIBH2dVoice"
    assert (audio.mime_type, audio.size, audio.duration) == ("audio/ogg", 9120, 4.0)
    assert message.language_hint == "th"


def test_telegram_audio_file_keeps_its_caption() -> None:
    [message] = telegram("transformers").parse(json.dumps(load_update("audio")).encode())
    assert message.text == "Tolong ringkaskan"
    [audio] = message.attachments
    assert audio.kind == AttachmentKind.AUDIO and audio.mime_type == "audio/mpeg"
    assert audio.duration == 95.0


def test_whatsapp_voice_note() -> None:
    [message] = whatsapp("transformers").parse(
        json.dumps(load("whatsapp", "audio")).encode())
    [audio] = message.attachments
    assert audio.kind == AttachmentKind.AUDIO and audio.ref == "1890245617683451"
    assert audio.mime_type == "audio/ogg; codecs=opus"


def test_line_audio_with_duration() -> None:
    [message] = line("transformers").parse(json.dumps(load("line", "audio")).encode())
    [audio] = message.attachments
    assert audio.kind == AttachmentKind.AUDIO and audio.ref == "544318200000000002"
    assert audio.duration == pytest.approx(4.2) and audio.mime_type == "audio/m4a"


@pytest.mark.parametrize("parse", [
    lambda: telegram("off").parse(json.dumps(load_update("voice")).encode()),
    lambda: whatsapp("off").parse(json.dumps(load("whatsapp", "audio")).encode()),
    lambda: line("off").parse(json.dumps(load("line", "audio")).encode()),
], ids=["telegram", "whatsapp", "line"])
def test_with_asr_off_audio_gets_the_notice(parse) -> None:
    [message] = parse()
    assert message.kind == MessageKind.UNSUPPORTED and message.attachments == ()


def test_the_recorded_audio_payloads_follow_the_vendored_specs() -> None:
    from tests.helpers.line_api import webhook_errors
    from tests.helpers.whatsapp_api import validate_webhook

    assert webhook_errors(load("line", "audio")) == []
    assert validate_webhook(load("whatsapp", "audio")) == []
