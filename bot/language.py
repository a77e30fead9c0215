"""Which language to answer in.

`detect` settles scripts that decide a language (Thai, Lao, Khmer, Myanmar, Tamil, Han, kana,
Hangul) by Unicode ranges and leaves Latin-script text to langdetect with a fixed seed, so the
same text always gets the same answer. `choose_reply_language` applies the fallbacks: a message
with nothing to detect keeps the conversation's language, then the platform's hint, then the
default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0

_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"[@/]\w+")
_NON_LETTERS = re.compile(r"[\d\W_]+", re.UNICODE)

# (first, last, language) for scripts that identify one language among those we serve.
_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0E00, 0x0E7F, "th"),
    (0x0E80, 0x0EFF, "lo"),
    (0x1780, 0x17FF, "km"),
    (0x19E0, 0x19FF, "km"),
    (0x1000, 0x109F, "my"),
    (0xAA60, 0xAA7F, "my"),
    (0x0B80, 0x0BFF, "ta"),
    (0x3040, 0x30FF, "ja"),
    (0xAC00, 0xD7AF, "ko"),
    (0x1100, 0x11FF, "ko"),
    (0x4E00, 0x9FFF, "zh"),
    (0x3400, 0x4DBF, "zh"),
)
_LANGDETECT_MAP = {"zh-cn": "zh", "zh-tw": "zh", "fil": "tl"}
#: Below this probability a Latin-script guess does not change the conversation's language.
CONFIDENT = 0.80


@dataclass(frozen=True)
class Detection:
    language: str | None
    confidence: float


def clean(text: str) -> str:
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    return _NON_LETTERS.sub(" ", text).strip()


def detect(text: str) -> Detection:
    """The language of `text`, or `Detection(None, 0)` when it has no letters to judge."""
    letters = clean(text)
    if not letters:
        return Detection(None, 0.0)
    counts: dict[str, int] = {}
    latin = 0
    for char in letters:
        code = ord(char)
        if char.isspace():
            continue
        if code < 0x250:
            latin += 1
            continue
        for first, last, language in _SCRIPTS:
            if first <= code <= last:
                counts[language] = counts.get(language, 0) + 1
                break
    if counts:
        language, count = max(counts.items(), key=lambda item: item[1])
        # Japanese mixes kana with Han: any kana decides Japanese.
        if "ja" in counts and language == "zh":
            language = "ja"
        if count >= latin:
            return Detection(language, 1.0)
    try:
        guesses = detect_langs(letters)
    except LangDetectException:
        return Detection(None, 0.0)
    best = guesses[0]
    return Detection(_LANGDETECT_MAP.get(best.lang, best.lang), float(best.prob))


def normalise(code: str | None) -> str | None:
    """'en-US' -> 'en', 'zh-hans' -> 'zh', 'fil' -> 'tl'; None stays None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-", 1)[0].lower()
    return _LANGDETECT_MAP.get(base, base)


def choose_reply_language(text: str, *, current: str | None, hint: str | None,
                          default: str) -> str:
    detection = detect(text)
    if detection.language and (detection.confidence >= CONFIDENT or current is None):
        # Short Latin-script text is often misjudged: only a confident guess moves a
        # conversation that already has a language.
        if detection.confidence >= CONFIDENT or len(clean(text).split()) >= 3:
            return detection.language
    return current or normalise(hint) or default
