"""A guard from a list of words and regular expressions (GUARD_KEYWORDS_FILE).

The file, UTF-8, one entry a line::

    # a comment
    some phrase                 a word or phrase, any case; whole words in scripts with spaces,
                                anywhere in Thai, Lao, Khmer, Burmese and Chinese text
    re:\\bfree\\s+money\\b       a Python regular expression (case-insensitive), run by the
                                `regex` module under a time limit (PATTERN_SECONDS)
    [th]                        entries below apply only to Thai conversations ...
    [*]                         ... and from here to every language again

The section an entry matched is its category ("keywords", or "keywords:th"). Images are not
checked. It reads the whole text in one check (no windows: nothing is cut at a window's edge), in
microseconds, with no model: a floor, not a replacement for a guard model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from bot.kernel.languages import normalise_language
from workers.models.guard.base import (
    BaseGuard,
    GuardConfigError,
    GuardRequest,
    GuardUnavailable,
    GuardVerdict,
)

__all__ = ["KeywordsGuard", "parse_keywords"]

#: Scripts written without spaces between words: a word there is matched anywhere.
_NO_SPACES = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff]")
_SECTION = re.compile(r"^\[([A-Za-z_*-]+)\]$")
#: Seconds an operator's regular expression may search one text. Such a pattern may backtrack
#: without end on some text ("(a|aa)+$"); the `regex` module stops it at this limit, and
#: releases the GIL while it searches, so the worker's other threads go on meanwhile.
PATTERN_SECONDS = 0.25


class _TimedPattern:
    """An operator's pattern whose `search` gives up after `PATTERN_SECONDS`: the check then
    has no verdict (`GuardUnavailable`, which GUARD_FAIL decides on)."""

    def __init__(self, pattern: regex.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, text: str) -> regex.Match[str] | None:
        try:
            return self.pattern.search(text, timeout=PATTERN_SECONDS)
        except TimeoutError:
            raise GuardUnavailable(
                f"keywords pattern ran over {PATTERN_SECONDS}s on a text") from None


@dataclass(frozen=True)
class _Rule:
    #: Words and phrases compile to linear `re` patterns; operators' own patterns are timed.
    pattern: re.Pattern[str] | _TimedPattern
    language: str | None  # None: every language


def parse_keywords(text: str) -> list[_Rule]:
    """The rules of a keywords file; raises `GuardConfigError` for a bad regular expression."""
    rules: list[_Rule] = []
    language: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section:
            name = section.group(1)
            language = None if name == "*" else (normalise_language(name) or name.lower())
            continue
        pattern: re.Pattern[str] | _TimedPattern
        if line.startswith("re:"):
            try:
                pattern = _TimedPattern(regex.compile(line[3:].strip(),
                                                      regex.IGNORECASE | regex.VERSION0))
            except regex.error as exc:
                raise GuardConfigError(f"keywords file line {number}: {exc}") from None
        elif _NO_SPACES.search(line):
            pattern = re.compile(re.escape(line), re.IGNORECASE)
        else:
            pattern = re.compile(rf"(?<!\w){re.escape(line)}(?!\w)", re.IGNORECASE)
        rules.append(_Rule(pattern, language))
    return rules


class KeywordsGuard(BaseGuard):
    name = "keywords"
    window_chars = None  # the whole text, however long (the caller bounds it)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rules: list[_Rule] | None = None

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GuardConfigError(f"GUARD_KEYWORDS_FILE {self.path}: {exc.strerror}") from None
        self._rules = parse_keywords(text)

    def check(self, request: GuardRequest) -> GuardVerdict:
        self.load()
        assert self._rules is not None
        started = time.perf_counter()
        text = request.prompt if request.response is None else request.response
        language = normalise_language(request.language)
        for rule in self._rules:
            if rule.language not in (None, language):
                continue
            if rule.pattern.search(text):
                category = "keywords" if rule.language is None else f"keywords:{rule.language}"
                return GuardVerdict("unsafe", (category,), seconds=time.perf_counter() - started)
        return GuardVerdict("safe", seconds=time.perf_counter() - started)

    def details(self) -> dict[str, Any]:
        return {"rules": len(self._rules or ())}
