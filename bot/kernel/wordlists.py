"""The language detector's word lists (bot/kernel/data/words/, described in its README), read once.

`lexicon()` returns a frozen `Lexicon`; the tables in it are read-only. Two are derived while
loading, not written in the files:

- the Malay/Indonesian contrast list is `ms_over_id.txt` plus `ms_over_id_written.txt` (the
  first wins for a word in both);
- a contrast-list word longer than two letters is a Malay-family word (weight 1) as well,
  unless a language list has it or it is a lookalike (a bus is a bus in English too; "sila"
  is Filipino for "they").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

_SECTION = re.compile(r"\[([+-]?\d+(?:\.\d+)?)\]")


@dataclass(frozen=True)
class Lexicon:
    """Word -> weight tables of the Latin-script languages, and the word sets."""

    en: Mapping[str, float]
    malay: Mapping[str, float]
    tl: Mapping[str, float]
    vi: Mapping[str, float]
    #: Positive: Malay; negative: Indonesian.
    ms_over_id: Mapping[str, float]
    ms_over_id_pairs: Mapping[tuple[str, str], float]
    neutral: frozenset[str]
    lookalikes: frozenset[str]


def _lines(name: str) -> Iterator[str]:
    text = resources.files("bot.kernel").joinpath("data", "words", name).read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def weighted(name: str) -> dict[str, float]:
    """A weighted list: `[weight]` lines, each followed by the words of that weight."""
    table: dict[str, float] = {}
    weight: float | None = None
    for line in _lines(name):
        section = _SECTION.fullmatch(line)
        if section:
            weight = float(section.group(1))
            continue
        if weight is None:
            raise ValueError(f"{name}: words before the first [weight] line")
        for word in line.split():
            table[word] = weight
    return table


def _words(name: str) -> frozenset[str]:
    return frozenset(word for line in _lines(name) for word in line.split())


def _pairs(name: str) -> dict[tuple[str, str], float]:
    pairs: dict[tuple[str, str], float] = {}
    for line in _lines(name):
        first, second, weight = line.split()
        pairs[(first, second)] = float(weight)
    return pairs


def _contrast() -> dict[str, float]:
    contrast = weighted("ms_over_id.txt")
    for word, weight in weighted("ms_over_id_written.txt").items():
        contrast.setdefault(word, weight)
    return contrast


def _with_contrast_words(malay: dict[str, float], contrast: Mapping[str, float],
                         others: tuple[Mapping[str, float], ...],
                         lookalikes: frozenset[str]) -> dict[str, float]:
    """The Malay-family list plus the contrast list's words that no other list claims."""
    extra = {word: 1.0 for word in contrast
             if len(word) > 2 and word not in malay and word not in lookalikes
             and not any(word in table for table in others)}
    return {**malay, **extra}


@functools.cache
def lexicon() -> Lexicon:
    en, tl, vi = weighted("en.txt"), weighted("tl.txt"), weighted("vi.txt")
    contrast = _contrast()
    lookalikes = _words("lookalikes.txt")
    malay = _with_contrast_words(weighted("malay.txt"), contrast, (en, tl), lookalikes)
    return Lexicon(
        en=MappingProxyType(en), malay=MappingProxyType(malay), tl=MappingProxyType(tl),
        vi=MappingProxyType(vi), ms_over_id=MappingProxyType(contrast),
        ms_over_id_pairs=MappingProxyType(_pairs("ms_over_id_pairs.txt")),
        neutral=_words("neutral.txt"), lookalikes=lookalikes)
