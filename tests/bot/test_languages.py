"""Language codes in one place: the languages served, their own names, and the normalisation
that texts, detection, guards and speech recognition share."""

from __future__ import annotations

import pytest

from bot.kernel import language, texts
from bot.kernel.languages import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    SUPPORTED_LANGUAGES,
    normalise,
    normalise_language,
    resolve_language,
)


def test_supported_languages_in_order() -> None:
    assert SUPPORTED_LANGUAGES == ("en", "id", "ms", "tl", "th", "vi", "ta", "my", "km", "lo",
                                   "zh")
    assert DEFAULT_LANGUAGE == "en"


def test_language_names_are_endonyms() -> None:
    assert tuple(LANGUAGE_NAMES) == SUPPORTED_LANGUAGES
    assert LANGUAGE_NAMES["en"] == "English"
    assert LANGUAGE_NAMES["th"] == "ไทย"
    assert LANGUAGE_NAMES["my"] == "မြန်မာ"
    assert LANGUAGE_NAMES["zh"] == "中文"


def test_normalise() -> None:
    assert normalise("en-US") == "en"
    assert normalise("zh-hant") == "zh"
    assert normalise("zh_Hans_SG") == "zh"
    assert normalise("fil") == "tl"
    assert normalise("in") == "id"
    assert normalise("ms-MY") == "ms"
    assert normalise("pt-BR") == "pt"
    assert normalise("iw") == "he"  # an old code of a language we do not serve
    assert normalise("") is None and normalise(None) is None and normalise("  ") is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("th", "th"),
        ("TH", "th"),
        ("fil", "tl"),
        ("fil-PH", "tl"),
        ("zh-hant", "zh"),
        ("zh-Hans-CN", "zh"),
        ("zh_TW", "zh"),
        ("ms-MY", "ms"),
        ("in", "id"),
        ("pt-BR", None),
        ("pt", None),
        ("", None),
        (None, None),
        ("klingon", None),
    ],
)
def test_normalise_language(code: str | None, expected: str | None) -> None:
    assert normalise_language(code) == expected
    assert resolve_language(code) == (expected or "en")


def test_one_table_of_aliases() -> None:
    # Detection and the notices read the same codes the same way.
    for code in ("fil", "in", "zsm", "yue", "en-GB", "pt-BR", "tgl"):
        assert language.choose_reply_language("", current=code, hint=None,
                                               default="en") == normalise(code)
    assert not hasattr(language, "_ALIASES") and not hasattr(texts, "_ALIASES")
    assert texts.text(texts.Text.APOLOGY, "fil") == texts.text(texts.Text.APOLOGY, "tl")
