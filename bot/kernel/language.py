"""Which language to answer in.

`detect` names the language of a chat message; `choose_reply_language` turns that into the
conversation's reply language with the fallbacks a chat needs.

How `detect` decides:

1. `clean` drops what carries no language: URLs, e-mail addresses, @mentions, /commands,
   emoji, digits and punctuation.
2. Scripts that name one language settle it by Unicode block: Thai, Lao, Khmer, Myanmar,
   Tamil, Han (zh; any kana makes it ja), Hangul (ko), and a few others outside Southeast
   Asia. When a message mixes scripts the one with the most letters wins (a Han, kana or
   Hangul character counts as 3 letters, being a syllable or a word).
3. Latin-script text is the hard part: English, Indonesian, Malay, Filipino and Vietnamese,
   plus es/fr/de/pt/it/nl for visitors from elsewhere. Three kinds of evidence are added up in
   log-odds:
   - py3langid's naive Bayes model (byte n-grams, deterministic, bundled with its wheel: no
     download) restricted to those languages, tempered for short text;
   - word lists of each language's common and distinctive words (chat spelling included),
     which carry 1-3-word fragments the n-gram model gets wrong, and weigh a Southeast Asian
     language's words over English ones in code-mixed chat (Taglish, Manglish);
   - Vietnamese letters (ă đ ơ ư and tone marks on them) that no other language uses.
   Malay and Indonesian are first scored as one family, then split by a list of words and
   spellings that tell them apart (tak/tidak, kerana/karena, sahaja/saja, kereta/mobil ...)
   and by the model's own Malay-vs-Indonesian odds.

The result carries a confidence: the probability of the winning language, scaled down for
one- and two-word texts, so that "ok bro" or "sama-sama" never reads as a confident answer.
Text with no letters, or only laughter and acknowledgements ("haha", "ok", "lol"), has no
language: `Detection(None, 0.0)`.

Why py3langid: of the libraries measured behind the same script rules and word lists
(langdetect, lingua, pycld2, fastText's bundled lite model, py3langid), it and lingua were
the most accurate on short text, and py3langid is a 4.6 MB wheel against lingua's 96 MB.
Its model knows Malay apart from Indonesian, which langdetect's lacks and the word lists
alone can't do for text without distinctive words. Why es/fr/de/pt/it/nl: they are the
Latin-script languages of most visitors to the region, and without them a Spanish message
reads as Filipino (para, mesa, pero) or a French one as Malay; they carry a penalty that
only clear evidence overcomes, so they never take a short Southeast Asian message.

The model loads on the first Latin-script text (about 0.6 s, about 100 MB); call `warm_up`
at process start to pay that early. Everything is deterministic and works offline.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.kernel.languages import normalise, normalise_language
from bot.kernel.wordlists import lexicon

#: At or above this confidence a detection may change a conversation's language.
CONFIDENT = 0.80
#: On first contact a detection below this confidence loses to the platform's language hint.
FIRST_CONTACT = 0.50
#: Net words distinctive of Malay (or Indonesian) that it takes to switch between the two.
MS_ID_SWITCH_MARKERS = 2

#: Latin-script languages we tell apart: the ones we serve ...
SEA_LATIN: tuple[str, ...] = ("en", "id", "ms", "tl", "vi")
#: ... and the visitors' languages we recognise rather than misread as one of ours.
OTHER_LATIN: tuple[str, ...] = ("es", "fr", "de", "pt", "it", "nl")

_MAX_CHARS = 2000  # a message's first 2,000 characters decide its language


@dataclass(frozen=True)
class Detection:
    """What `detect` found.

    `language` is an ISO 639-1 code, or None when the text has nothing to tell. `confidence`
    runs from 0 to 1. `method` says what decided: "script", "model" (the Latin-script models)
    or "none". `markers`, when `language` is ms or id, is the net count of words distinctive
    of it against the other (kerana, tak, kedai / karena, gak, toko): the evidence it takes to
    switch a conversation between the two. It is 0 for other languages.
    """

    language: str | None
    confidence: float
    method: str = "none"
    markers: int = 0


NOTHING = Detection(None, 0.0)


# --------------------------------------------------------------------------------- cleaning

# Every pattern here reads a person's or the model's text and is linear in it (one message
# must never cost a worker seconds; tests/security/test_linear_text.py): a quantifier that
# could trade characters with the next one is possessive, and an unanchored search starts only
# where a match can begin (a lookbehind), so no run is rescanned from each of its positions.
#
# A host name is taken from the start of its dotted run, leading hyphens and all (never from
# inside a label, nor right after "label."): from each later label the same host would match
# again, rescanning the run once per label.
_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|(?<![\w-])(?<![\w-]\.)-*+\b[\w-]++(?:\.[\w-]++)*"
    r"\.(?:com|net|org|edu|gov|io|co|info|biz|me|app|dev|ly|gl|to|tv"
    r"|id|my|sg|ph|th|vn|kh|la|mm|cn|tw|hk|jp|kr|in|au|uk|us)\b(?:/\S*)?",
    re.IGNORECASE)
# local@domain.tld, starting after a space or an "@": the local part holds no "@" (a greedy
# "\S+@\S+" tries every "@" of a run with every "." after it: cubic on "@.@.@.").
_EMAIL = re.compile(r"(?<![^\s@])[^\s@]++@[^\s@]+\.\w+")
_HANDLE = re.compile(r"(?<![\w/])[@/][\w.]+")
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")


def _is_letter(char: str) -> bool:
    # Letters and combining marks: Thai, Khmer, Myanmar ... vowels are marks (Mn, Mc).
    return unicodedata.category(char)[0] in "LM"


def clean(text: str) -> str:
    """`text` without URLs, e-mail addresses, @mentions, /commands, emoji, digits and
    punctuation: words (letters and combining marks, with in-word ' and -) separated by
    single spaces."""
    text = unicodedata.normalize("NFC", text[:_MAX_CHARS])
    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    out = []
    previous_letter = False
    for i, char in enumerate(text):
        if _is_letter(char):
            out.append(char)
            previous_letter = True
        elif (char in "'’-" and previous_letter and i + 1 < len(text)
              and _is_letter(text[i + 1])):
            out.append(char)
        else:
            if previous_letter:
                out.append(" ")
            previous_letter = False
    return "".join(out).strip()


# ---------------------------------------------------------------------------------- scripts

# (first code point, last code point, script); scripts map to languages below.
_BLOCKS: tuple[tuple[int, int, str], ...] = tuple(sorted((
    (0x0041, 0x024F, "latin"), (0x1E00, 0x1EFF, "latin"), (0x2C60, 0x2C7F, "latin"),
    (0xA720, 0xA7FF, "latin"), (0xFF21, 0xFF5A, "latin"),
    (0x0370, 0x03FF, "greek"), (0x1F00, 0x1FFF, "greek"),
    (0x0400, 0x052F, "cyrillic"), (0x0530, 0x058F, "armenian"), (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0x08A0, 0x08FF, "arabic"),
    (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0x0980, 0x09FF, "bengali"), (0x0A00, 0x0A7F, "gurmukhi"),
    (0x0A80, 0x0AFF, "gujarati"), (0x0B00, 0x0B7F, "oriya"), (0x0B80, 0x0BFF, "tamil"),
    (0x0C00, 0x0C7F, "telugu"), (0x0C80, 0x0CFF, "kannada"), (0x0D00, 0x0D7F, "malayalam"),
    (0x0D80, 0x0DFF, "sinhala"), (0x0E00, 0x0E7F, "thai"), (0x0E80, 0x0EFF, "lao"),
    (0x0F00, 0x0FFF, "tibetan"), (0x1000, 0x109F, "myanmar"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x1200, 0x137F, "ethiopic"), (0x1780, 0x17FF, "khmer"),
    (0x19E0, 0x19FF, "khmer"), (0x3040, 0x30FF, "kana"), (0x3130, 0x318F, "hangul"),
    (0x31F0, 0x31FF, "kana"), (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"),
    (0xA9E0, 0xA9FF, "myanmar"), (0xAA60, 0xAA7F, "myanmar"), (0xAC00, 0xD7AF, "hangul"),
    (0xF900, 0xFAFF, "han"), (0xFF66, 0xFF9F, "kana"), (0x11FC0, 0x11FFF, "tamil"),
    (0x20000, 0x2FA1F, "han"),
)))
_BLOCK_STARTS = [first for first, _, _ in _BLOCKS]

_SCRIPT_LANGUAGE = {
    "thai": "th", "lao": "lo", "khmer": "km", "myanmar": "my", "tamil": "ta", "han": "zh",
    "kana": "ja", "hangul": "ko", "greek": "el", "cyrillic": "ru", "armenian": "hy",
    "hebrew": "he", "arabic": "ar", "devanagari": "hi", "bengali": "bn", "gurmukhi": "pa",
    "gujarati": "gu", "oriya": "or", "telugu": "te", "kannada": "kn", "malayalam": "ml",
    "sinhala": "si", "tibetan": "bo", "georgian": "ka", "ethiopic": "am",
}
# Characters that stand for a syllable or a word weigh more than an alphabet's letters.
_SCRIPT_WEIGHT = {"han": 3.0, "kana": 3.0, "hangul": 3.0}
_UKRAINIAN = frozenset("іїєґІЇЄҐ")
_PERSIAN = frozenset("پچژگ")
_URDU = frozenset("ٹڈڑںے")


def _script(char: str) -> str | None:
    code = ord(char)
    i = bisect.bisect_right(_BLOCK_STARTS, code) - 1
    if i >= 0 and code <= _BLOCKS[i][1]:
        return _BLOCKS[i][2]
    return None


def _script_language(script: str, letters: str) -> str:
    if script == "cyrillic" and any(c in _UKRAINIAN for c in letters):
        return "uk"
    if script == "arabic":
        if any(c in _URDU for c in letters):
            return "ur"
        if any(c in _PERSIAN for c in letters):
            return "fa"
    return _SCRIPT_LANGUAGE.get(script, "und")


# ------------------------------------------------------------------------------ evidence
#
# The word lists live in bot/kernel/data/words/ (bot/kernel/wordlists.py reads them once).

_LAUGHTER = re.compile(  # possessive: "a+[ha]*" would split a run of a's every way
    r"(?:ha|he|hi|ho|hu|wk|kw|xa|ja|ke|ks){2,}+h?|a*+h++a[ha]*+|x++[dp]++|k++|m++|h++m++|e++h++")
# Letters only Vietnamese uses (NFC): ă đ ơ ư and the vowels with a tone mark no other
# language puts on them.
_VIETNAMESE = frozenset("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĩũ")

# How the evidence adds up: log-odds weights, chosen on the project's samples and checked on
# formal text written apart from them (the numbers are not sharp: nearby values score alike).
_MODEL_WEIGHT = 0.5  # times the log of the n-gram model's probability, up to 3 words,
_MODEL_WEIGHT_PER_WORD = 0.05  # plus this for each further word,
_MODEL_WEIGHT_MAX = 1.0  # up to this
_MS_ID_MODEL_WEIGHT = 0.5  # times the model's log-odds of Malay over Indonesian
_SEA_WORD_WEIGHT = 1.75  # a Filipino/Malay word outweighs an English one in code-mixed chat
_OTHER_PENALTY = 3.0  # es/fr/de/pt/it/nl need clear evidence in short text,
_OTHER_PENALTY_PER_WORD = 0.25  # less with each word past 3,
_OTHER_PENALTY_MIN = 1.0  # down to this
_VIETNAMESE_LETTERS = 4.0  # per word with a letter only Vietnamese uses
_PREFER_BIAS = 1.0  # log-odds towards the preferred one of ms/id


# ------------------------------------------------------------------------------------ model

_model: Any = None
_model_lock = threading.Lock()


def _load_model() -> Any:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(SEA_LATIN + OTHER_LATIN))
                _model = identifier
    return _model


def warm_up() -> None:
    """Load the Latin-script model now rather than on the first message that needs it."""
    _load_model()


def _model_probabilities(text: str) -> dict[str, float]:
    return {language: float(p) for language, p in _load_model().rank(text)}


# ------------------------------------------------------------------------------ Latin text

def _lookup(table: Mapping[str, float], word: str) -> float:
    weight = table.get(word)
    if weight is not None:
        return weight
    if "-" in word:
        parts = word.split("-")
        if parts[0] == parts[-1]:  # reduplication: sama-sama, kanak-kanak
            return table.get(parts[0], 0.0)
        return max(table.get(part, 0.0) for part in parts)
    return 0.0


_MALAY_PREFIX = re.compile(
    r"(?:meng|meny|mem|men|me|ber|ter|per|peng|peny|pem|pen|di|ke|se)[a-z]{3,}")
_MALAY_SUFFIX = re.compile(r"[a-z]{3,}(?:kan|nya|lah|kah)")
_TL_PREFIX = re.compile(r"(?:mag|nag|pag|ipag|nakaka|makaka|naka|maka|pinag|ika)-?[a-z]{3,}")


def _affixes(word: str) -> tuple[float, float]:
    """Evidence from the shape of a word no list knows: (Malay family, Filipino)."""
    malay = 0.0
    if _MALAY_SUFFIX.fullmatch(word):
        malay += 1.0
    if _MALAY_PREFIX.fullmatch(word) and len(word) > 6:
        malay += 0.7
    if word.startswith("ke") and word.endswith("an") and len(word) > 6:
        malay += 0.5
    filipino = 0.7 if _TL_PREFIX.fullmatch(word) else 0.0
    return malay, filipino


def _words(letters: str) -> list[str]:
    """The words of Latin-script text, lower-cased, without laughter and other neutral words."""
    neutral = lexicon().neutral
    words = []
    for match in _WORD.finditer(letters.lower()):
        word = match.group().replace("’", "'")
        if word in neutral or _LAUGHTER.fullmatch(word):
            continue
        words.append(word)
    return words


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {key: math.exp(value - top) for key, value in scores.items()}
    total = sum(exp.values())
    return {key: value / total for key, value in exp.items()}


def _word_scores(words: list[str]) -> dict[str, float]:
    """Step 1: what the word lists say, summed per language ("malay" is Malay and Indonesian
    together); a word no list knows is judged by its affixes."""
    lex = lexicon()
    tables = {"en": lex.en, "malay": lex.malay, "tl": lex.tl, "vi": lex.vi}
    scores = dict.fromkeys(tables, 0.0)
    for word in words:
        known = {language: _lookup(table, word) for language, table in tables.items()}
        if not any(known.values()):
            known["malay"], known["tl"] = _affixes(word)
        for language, weight in known.items():
            scores[language] += weight
    return scores


def _vietnamese_words(words: list[str]) -> int:
    """Step 2: how many words have a letter only Vietnamese uses."""
    return sum(1 for word in words if any(char in _VIETNAMESE for char in word))


@dataclass(frozen=True)
class _Contrast:
    """What tells Malay from Indonesian: the summed log-odds (positive: Malay), and how many
    words were distinctive of each."""

    odds: float
    malay_words: int
    indonesian_words: int

    @property
    def markers(self) -> int:
        return self.malay_words - self.indonesian_words


def _word_contrast(words: list[str], i: int) -> float:
    word, contrast_words = words[i], lexicon().ms_over_id
    contrast = _lookup(contrast_words, word)
    if not contrast and len(word) > 6:  # universiti/universitas, kualiti/kualitas
        if word.endswith("iti"):
            contrast = 2.0
        elif word.endswith("itas"):
            contrast = -2.0
    if i + 1 < len(words):
        contrast += lexicon().ms_over_id_pairs.get((word, words[i + 1]), 0.0)
    if word == "sangat" and i > 0:  # "mahal sangat": Malay puts it after the adjective
        contrast += 1.5
    return contrast


def _ms_id_contrast(words: list[str]) -> _Contrast:
    """Step 3: the Malay-against-Indonesian words, spellings and two-word expressions."""
    contrasts = [_word_contrast(words, i) for i in range(len(words))]
    return _Contrast(odds=sum(contrasts),
                     malay_words=sum(1 for c in contrasts if c >= 1.5),
                     indonesian_words=sum(1 for c in contrasts if c <= -1.5))


def _family_probabilities(words: list[str], log_p: Callable[..., float]) -> dict[str, float]:
    """Step 4: the n-gram model and the word evidence together, over en, tl, vi, the Malay
    family and the visitors' languages. The model earns trust with length; the word lists
    matter most for short text, and the visitors' languages pay a penalty."""
    lexicon_scores = _word_scores(words)
    extra_words = max(0, len(words) - 3)
    weight = min(_MODEL_WEIGHT + _MODEL_WEIGHT_PER_WORD * extra_words, _MODEL_WEIGHT_MAX)
    scores = {
        "en": weight * log_p("en") + lexicon_scores["en"],
        "tl": weight * log_p("tl") + _SEA_WORD_WEIGHT * lexicon_scores["tl"],
        "vi": (weight * log_p("vi") + lexicon_scores["vi"]
               + _VIETNAMESE_LETTERS * _vietnamese_words(words)),
        "malay": weight * log_p("ms", "id") + _SEA_WORD_WEIGHT * lexicon_scores["malay"],
    }
    penalty = max(_OTHER_PENALTY - _OTHER_PENALTY_PER_WORD * extra_words, _OTHER_PENALTY_MIN)
    for language in OTHER_LATIN:
        scores[language] = weight * log_p(language) - penalty
    return _softmax(scores)


def _malay_share(contrast: _Contrast, log_p: Callable[..., float], prefer: str | None) -> float:
    """Step 5: the probability that the Malay family's text is Malay rather than Indonesian.
    With nothing distinctive of the other side, the preferred one wins; otherwise the
    preference only tips the balance."""
    odds = contrast.odds + _MS_ID_MODEL_WEIGHT * (log_p("ms") - log_p("id"))
    if prefer == "ms":
        odds = (max(odds, 0.0) if not contrast.indonesian_words else odds) + _PREFER_BIAS
    elif prefer == "id":
        odds = (min(odds, 0.0) if not contrast.malay_words else odds) - _PREFER_BIAS
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, odds))))


def _detect_latin(words: list[str], prefer: str | None) -> Detection:
    """Latin-script words: the family's probabilities (step 4) with the Malay family split
    (steps 3 and 5); the winner's confidence is scaled down for one- and two-word texts."""
    model = _model_probabilities(" ".join(words))

    def log_p(*languages: str) -> float:
        return math.log(max(sum(model.get(language, 0.0) for language in languages), 1e-4))

    family = _family_probabilities(words, log_p)
    contrast = _ms_id_contrast(words)
    p_ms = _malay_share(contrast, log_p, prefer)
    probabilities = {language: p for language, p in family.items() if language != "malay"}
    probabilities["ms"] = family["malay"] * p_ms
    probabilities["id"] = family["malay"] * (1.0 - p_ms)

    language = max(probabilities, key=lambda key: (probabilities[key], key == prefer))
    confidence = probabilities[language] * min(1.0, 0.55 + 0.15 * len(words))
    markers = {"ms": contrast.markers, "id": -contrast.markers}.get(language, 0)
    return Detection(language, round(confidence, 4), "model", markers)


# ------------------------------------------------------------------------------- public API

def detect(text: str, *, prefer: str | None = None) -> Detection:
    """The language of `text`, or `Detection(None, 0.0)` when it has nothing to tell.

    `prefer` ("ms" or "id") breaks a tie between Malay and Indonesian, which share most of
    their words: pass the conversation's language or the platform's hint.
    """
    letters = clean(text)
    if not letters:
        return NOTHING
    weights: dict[str, float] = {}
    for char in letters:
        if char == " ":
            continue
        script = _script(char)
        if script is None:
            if unicodedata.category(char)[0] == "M":
                continue  # a mark on the previous letter
            script = "other"
        weights[script] = weights.get(script, 0.0) + _SCRIPT_WEIGHT.get(script, 1.0)
    if not weights:
        return NOTHING
    if "kana" in weights and "han" in weights:  # Japanese writes Han with kana
        weights["kana"] += weights.pop("han")
    script = max(weights, key=lambda key: weights[key])
    if script != "latin":
        if script == "other":
            return NOTHING
        share = weights[script] / sum(weights.values())
        confidence = 1.0 if share >= 0.8 else 0.4 + 0.75 * share
        return Detection(_script_language(script, letters), round(confidence, 4), "script")
    words = _words(" ".join(word for word in letters.split()
                            if all(_script(c) in ("latin", None) for c in word)))
    if not words:
        return NOTHING
    return _detect_latin(words, prefer if prefer in ("ms", "id") else None)


def is_other_language(text: str, expected: str) -> bool:
    """True when `text` is confidently in a language other than `expected`: the check for a
    model's answer. Malay read as Indonesian (or the reverse) counts only with
    `MS_ID_SWITCH_MARKERS` distinctive words, since the two share most of their vocabulary."""
    expected = normalise(expected) or expected
    detection = detect(text, prefer=expected)
    if (detection.language is None or detection.language == expected
            or detection.confidence < CONFIDENT):
        return False
    if {detection.language, expected} == {"ms", "id"}:
        return detection.markers >= MS_ID_SWITCH_MARKERS
    return True


def choose_reply_language(text: str, *, current: str | None, hint: str | None,
                          default: str) -> str:
    """The language to answer `text` in.

    - Nothing to detect (no letters, only emoji, a link, "haha"): keep `current`, else the
      platform's `hint`, else `default`. A hint counts only when it names one of
      `bot.kernel.languages.SUPPORTED_LANGUAGES` ('id-ID', 'fil', 'zh-Hant'); others are ignored.
    - First contact (`current` is None): the detection, unless it is weaker than
      `FIRST_CONTACT` and the platform gave a hint.
    - Later: the conversation's language changes only on a detection of at least `CONFIDENT`
      (a short "ok bro" never moves it), and between Malay and Indonesian only with
      `MS_ID_SWITCH_MARKERS` words that are distinctive of the new one.
    - Between Malay and Indonesian an ambiguous text follows the conversation's language,
      else the hint.

    Returns an ISO 639-1 code: one of `bot.kernel.languages.SUPPORTED_LANGUAGES` when the language is
    one of them, another code otherwise (the caller's texts fall back to English for it).
    """
    current = normalise(current)
    hinted = normalise_language(hint)  # the sender's choice: only a language we serve
    prefer = next((code for code in (current, hinted) if code in ("ms", "id")), None)
    detection = detect(text, prefer=prefer)
    if detection.language is None:
        return current or hinted or default
    if current is None:
        if detection.confidence >= FIRST_CONTACT or not hinted:
            return detection.language
        return hinted
    if detection.language == current or detection.confidence < CONFIDENT:
        return current
    if {detection.language, current} == {"ms", "id"}:
        if detection.markers < MS_ID_SWITCH_MARKERS:
            return current
    return detection.language
