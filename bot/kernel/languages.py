"""Language codes: the languages the bot serves, their own names, and what the codes that
platforms, people and models send ('en-US', 'zh-Hant', 'fil', 'in') normalise to.

    normalise('pt-BR') -> 'pt'     any language, as an ISO 639-1 code when it has one
    normalise_language('fil') -> 'tl'   one of SUPPORTED_LANGUAGES, or None
    resolve_language('pt') -> 'en'      one of SUPPORTED_LANGUAGES, DEFAULT_LANGUAGE if need be

`bot.kernel.texts` (the notices in each language) and `bot.kernel.language` (detection) both take their codes
from here. A code a platform sends for its user (Telegram `language_code`, LINE's profile
language, a browser's Accept-Language) is the sender's choice: it goes through
`normalise_language` when the message is parsed (`bot.kernel.messages.InboundMessage`) and when it is
used as a hint (`bot.kernel.language.choose_reply_language`), so only the supported codes are ever
stored or counted.
"""

from __future__ import annotations

#: The languages the bot's own notices are written in, and the reply languages /lang offers.
SUPPORTED_LANGUAGES: tuple[str, ...] = (
    "en", "id", "ms", "tl", "th", "vi", "ta", "my", "km", "lo", "zh",
)
DEFAULT_LANGUAGE = "en"

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "id": "Bahasa Indonesia",
    "ms": "Bahasa Melayu",
    "tl": "Filipino",
    "th": "ไทย",
    "vi": "Tiếng Việt",
    "ta": "தமிழ்",
    "my": "မြန်မာ",
    "km": "ខ្មែរ",
    "lo": "ລາວ",
    "zh": "中文",
}
"""Each language's name written in that language, as a /lang reply shows it."""

# Codes that are not ISO 639-1 (ISO 639-2/3, and old or retired codes) for ISO 639-1 ones.
_ALIASES: dict[str, str] = {
    "fil": "tl", "tgl": "tl",
    "in": "id", "ind": "id",
    "msa": "ms", "may": "ms", "zsm": "ms", "zlm": "ms",
    "eng": "en", "tha": "th", "vie": "vi", "tam": "ta",
    "mya": "my", "bur": "my", "khm": "km", "lao": "lo",
    "zho": "zh", "chi": "zh", "cmn": "zh", "yue": "zh",
    "iw": "he", "ji": "yi", "jw": "jv", "nb": "no", "nn": "no",
}


def normalise(code: str | None) -> str | None:
    """The language `code` names: 'en-US' -> 'en', 'zh_Hant_TW' -> 'zh', 'fil' -> 'tl',
    'in' -> 'id', 'pt-BR' -> 'pt' (supported or not); None or '' -> None.

    Region and script subtags are dropped, case is ignored, and non-ISO-639-1 codes that have
    an ISO 639-1 equivalent are mapped to it."""
    if not code or not code.strip():
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return _ALIASES.get(base, base) or None


def normalise_language(code: str | None) -> str | None:
    """The supported language `code` names (see `normalise`), or None."""
    base = normalise(code)
    return base if base in SUPPORTED_LANGUAGES else None


def resolve_language(code: str | None) -> str:
    """Like `normalise_language`, falling back to `DEFAULT_LANGUAGE` for anything unsupported."""
    return normalise_language(code) or DEFAULT_LANGUAGE
