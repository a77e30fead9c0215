"""The knowledge base's tokens: chosen by script, not by language (issue #22's measurements,
docs/knowledge.md).

    normalise     NFKC, casefold, every decimal digit to ASCII (Thai ๑๒, Khmer ១២ -> 12), and
                  Latin diacritics folded (Vietnamese typed without its tones still matches)
    tokens        runs of one script family (letters, digits and marks, no punctuation such
                  as ။ or ។; a digit or a Latin word never joins a run of an unspaced
                  script), then per run:
                  Han / kana    character 1- and 2-grams
                  Thai          PyThaiNLP's dictionary words (newmm), each a token
                  Myanmar       syllables (a consonant starts one unless a virama precedes it
                                or an asat / virama follows it)
                  Lao           orthographic clusters (a consonant with its marks and vowels,
                                a preposed vowel with the consonant after it)
                  Khmer         code-point 3-grams
                  any other     the word, 3-grams of "^word$" (suffixes: Tamil cases, English
                                plurals, Tagalog affixes), and the pair with the word before it
                                (Vietnamese syllables pair into words: "bac_si")
    TOKENS_VERSION  names the scheme: a stored index made by another one is re-tokenised
                  (`storage.knowledge.KnowledgeBase.reindex`)

Every pattern is a character class, a run of one, or a fixed-width look-around: linear in the
text. Pure: the store (`storage.knowledge`) and the turn use the same function on both sides.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable
from functools import cache

import regex

#: Tokens longer than this are clipped (the postings' column width).
MAX_TOKEN = 64
_UNSPACED = r"\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Han}\p{Hiragana}\p{Katakana}"
_RUN = regex.compile(
    r"(?V1)[\p{Han}\p{Hiragana}\p{Katakana}][\p{Han}\p{Hiragana}\p{Katakana}\p{M}]*"
    r"|[\p{Thai}--[\p{P}\p{S}]]+|[\p{Lao}--[\p{P}\p{S}]]+"
    r"|[\p{Khmer}--[\p{P}\p{S}]]+|[\p{Myanmar}--[\p{P}\p{S}]]+"
    rf"|[[\p{{L}}\p{{N}}\p{{M}}]--[{_UNSPACED}]]+")
_HAN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
_THAI = regex.compile(r"\p{Thai}")
_LAO = regex.compile(r"\p{Lao}")
_KHMER = regex.compile(r"\p{Khmer}")
_MYANMAR = regex.compile(r"\p{Myanmar}")
_UNSPACED_START = regex.compile(rf"[{_UNSPACED}]")
_DIGIT = regex.compile(r"\p{Nd}")
_LATIN_MARKED = regex.compile(r"\p{Latin}\p{Mn}+")
#: Where a Burmese syllable starts: a consonant not stacked under a virama (U+1039) nor closed
#: by an asat (U+103A) or a virama, an independent vowel, a digit, a sign or punctuation.
_MYANMAR_SYLLABLE = regex.compile(
    r"(?<!\u1039)[\u1000-\u1021](?![\u103A\u1039])|[\u1023-\u102A\u103F\u1040-\u104F]")
#: Where a Lao cluster starts: a preposed vowel, or a consonant (or digit) not right after one.
_LAO_CLUSTER = regex.compile(
    r"[\u0EC0-\u0EC4]|(?<![\u0EC0-\u0EC4\u0EBC])[\u0E81-\u0EAE\u0EDC-\u0EDF\u0ED0-\u0ED9]")
#: NFKC splits Thai SARA AM (U+0E33) into NIKHAHIT + SARA AA; the dictionary spells it whole.
_THAI_AM = ("\u0e4d\u0e32", "\u0e33")


def _fold_latin(match: regex.Match[str]) -> str:
    return match.group()[0]


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _DIGIT.sub(lambda m: str(unicodedata.digit(m.group(), 0)), text)
    decomposed = unicodedata.normalize("NFD", text)
    folded = _LATIN_MARKED.sub(_fold_latin, decomposed)
    return unicodedata.normalize("NFC", folded).replace("đ", "d")


def _grams(units: str | list[str], sizes: tuple[int, ...], join: str = "") -> list[str]:
    out: list[str] = []
    for n in sizes:
        if len(units) < n:
            if n == sizes[0] and units:
                out.append(join.join(units))
            continue
        out.extend(join.join(units[i:i + n]) for i in range(len(units) - n + 1))
    return out


def _split(run: str, starts: regex.Pattern[str]) -> list[str]:
    cuts = [m.start() for m in starts.finditer(run)]
    if not cuts or cuts[0]:
        cuts.insert(0, 0)
    return [run[a:b] for a, b in zip(cuts, cuts[1:] + [len(run)], strict=True)]


@cache
def _pythainlp_version() -> str | None:
    # Read-only: PyThaiNLP neither creates ~/pythainlp-data nor downloads; newmm's dictionary
    # is in the wheel.
    os.environ.setdefault("PYTHAINLP_READ_ONLY", "1")
    try:
        import pythainlp.tokenize  # noqa: F401
    except ImportError:  # pragma: no cover - a declared dependency; the version says so
        return None
    return str(getattr(sys.modules["pythainlp"], "__version__", "0"))


@cache
def _thai_segmenter() -> Callable[[str], list[str]] | None:
    if _pythainlp_version() is None:  # pragma: no cover
        return None
    from pythainlp.tokenize import word_tokenize

    def segment(run: str) -> list[str]:
        return [w for w in word_tokenize(run.replace(*_THAI_AM), engine="newmm-safe",
                                         keep_whitespace=False) if w.strip()]
    return segment


def _thai(run: str) -> list[str]:
    segment = _thai_segmenter()
    if segment is None:
        return _grams(run, (2, 3))
    return [w[:MAX_TOKEN] for w in segment(run)]


def warm_up() -> None:
    """Load the Thai dictionary now (about half a second, some 75 MB) rather than on the first
    Thai text."""
    _thai("ทดสอบ")


def tokens_version() -> str:
    """The scheme's name; it changes whenever `tokens` would give another index (PyThaiNLP's
    version too: another release may bring another dictionary)."""
    thai = _pythainlp_version()
    return "2:" + (f"thai-newmm-{thai}" if thai is not None else "thai-ngrams")


def tokens(text: str) -> list[str]:
    """The text's tokens, in order, repeats kept (term frequencies count them)."""
    out: list[str] = []
    previous: str | None = None
    for run in _RUN.findall(normalise(text)):
        if not _UNSPACED_START.match(run):
            out.append(run[:MAX_TOKEN])
            out.extend(_grams(f"^{run}$", (3,)))
            if previous is not None:
                out.append(f"{previous}_{run}"[:MAX_TOKEN])
            previous = run
            continue
        previous = None
        if _HAN.match(run):
            out.extend(_grams(run, (1, 2)))
        elif _THAI.match(run):
            out.extend(_thai(run))
        elif _MYANMAR.match(run):
            out.extend(_split(run, _MYANMAR_SYLLABLE))
        elif _LAO.match(run):
            out.extend(_split(run, _LAO_CLUSTER))
        elif _KHMER.match(run):
            out.extend(_grams(run, (3,)))
    return out


def estimate_tokens(text: str) -> int:
    """A model-token estimate: len/4, len/2 for scripts written without spaces (whose
    characters cost about twice as many tokens)."""
    unspaced = sum(1 for _ in _UNSPACED_START.finditer(text))
    return (len(text) - unspaced) // 4 + unspaced // 2 + 1
