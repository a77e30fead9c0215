"""The bot's own notices: complete in every language, fields in place, fallbacks sane."""

from __future__ import annotations

import string

import pytest

from bot.kernel import texts
from bot.kernel.languages import LANGUAGE_NAMES, SUPPORTED_LANGUAGES
from bot.kernel.texts import FIELDS, REPLY_INSTRUCTION, Text, text

SAMPLE_FIELDS = {"limit_mb": 20, "language": "Filipino", "codes": "en, id, th", "minutes": 5, "page": 3}


def _fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("key", list(Text))
def test_every_text_exists_and_formats(key: Text, language: str) -> None:
    template = texts._TEXTS[language][key]
    assert template.strip() == template and template
    assert _fields_of(template) == FIELDS.get(key, frozenset())
    rendered = text(key, language, **{name: SAMPLE_FIELDS[name] for name in FIELDS.get(key, ())})
    assert "{" not in rendered and "}" not in rendered
    for name in FIELDS.get(key, ()):
        assert str(SAMPLE_FIELDS[name]) in rendered


def test_no_language_has_extra_or_missing_keys() -> None:
    assert set(texts._TEXTS) == set(SUPPORTED_LANGUAGES)
    for language in SUPPORTED_LANGUAGES:
        assert set(texts._TEXTS[language]) == set(Text)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_texts_are_translated(language: str) -> None:
    if language == "en":
        return
    for key in Text:
        assert texts._TEXTS[language][key] != texts._TEXTS["en"][key], (language, key)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_help_lists_every_command(language: str) -> None:
    help_text = text(Text.HELP, language)
    for command in ("/reset", "/lang ", "/lang auto", "/help", "/human"):
        assert command in help_text
    assert "SEA-LION" in help_text


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_greeting_names_the_bot_and_its_maker(language: str) -> None:
    greeting = text(Text.GREETING, language)
    assert "SEA-LION" in greeting and "AI Singapore" in greeting


# A word of the language's name, as the instruction written in that language uses it.
_NAME_IN_INSTRUCTION = {
    "en": "English", "id": "Indonesia", "ms": "Melayu", "tl": "Filipino", "th": "ไทย",
    "vi": "Việt", "ta": "தமிழ", "my": "မြန်မာ", "km": "ខ្មែរ", "lo": "ລາວ", "zh": "中文",
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_reply_instruction_names_its_own_language(language: str) -> None:
    instruction = REPLY_INSTRUCTION[language]
    assert instruction.strip() == instruction and instruction
    assert _NAME_IN_INSTRUCTION[language] in instruction
    assert "{" not in instruction


def test_lang_set_with_a_field_named_language() -> None:
    assert text(Text.LANG_SET, "th", language=LANGUAGE_NAMES["th"]).endswith("ภาษาไทย")
    english = text(Text.LANG_SET, "en", language="English")
    assert english == "OK! From now on I'll reply in English."


def test_missing_field_raises() -> None:
    with pytest.raises(KeyError):
        text(Text.FILE_TOO_LARGE, "en")


def test_fallbacks_to_english() -> None:
    english = text(Text.APOLOGY, "en")
    assert text(Text.APOLOGY, None) == english
    assert text(Text.APOLOGY, "pt-BR") == english
    assert text(Text.APOLOGY, "xx") == english
    assert text(Text.APOLOGY, "fil") == text(Text.APOLOGY, "tl") != english
    assert text(Text.APOLOGY, "zh-TW") == text(Text.APOLOGY, "zh")


def test_key_may_be_given_as_its_value() -> None:
    assert text("help", "vi") == text(Text.HELP, "vi")  # type: ignore[arg-type]


# Each language's own word for a voice message or sound, as its AUDIO_* texts use it.
_VOICE_WORD = {
    "en": "voice", "id": "suara", "ms": "suara", "tl": "voice", "th": "เสียง", "vi": "thoại",
    "ta": "குரல்", "my": "အသံ", "km": "សំឡេង", "lo": "ສຽງ", "zh": "语音",
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_what_the_bot_says_it_reads_is_true_in_every_configuration(language: str) -> None:
    """Documents (PDF, Word, text files) are read on every platform, so the greeting, the help
    and the "can't read this" note name them; voice notes are read only when ASR is on, and the
    "can't read this" note is what a voice note gets when it is off (adapters), so none of the
    three claims voice is read, and the note no longer says files are not."""
    assert _VOICE_WORD[language] in text(Text.AUDIO_SILENT, language)
    for key in (Text.GREETING, Text.HELP, Text.UNSUPPORTED):
        notice = text(key, language)
        assert "PDF" in notice and "Word" in notice, (key, language)
        assert _VOICE_WORD[language] not in notice, (key, language)
    assert ".docx" in text(Text.UNSUPPORTED, language)
    assert ".docx" in text(Text.HELP, language)
