"""A guard from a list of words and regular expressions (GUARD_KEYWORDS_FILE).

The file, UTF-8, one entry a line::

    # a comment
    some phrase                 a word or phrase, any case; whole words in scripts with spaces,
                                anywhere in Thai, Lao, Khmer, Burmese and Chinese text
    re:\\bfree\\s+money\\b       a Python regular expression (case-insensitive)
    [th]                        entries below apply only to Thai conversations ...
    [*]                         ... and from here to every language again

The section an entry matched is its category ("keywords", or "keywords:th"). Images are not
checked. It costs microseconds and needs no model: a floor, not a replacement for a guard model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from bot.languages import normalise_language
from workers.guards.base import BaseGuard, GuardConfigError, GuardRequest, GuardVerdict, clip

__all__ = ["KeywordsGuard", "parse_keywords"]

#: Scripts written without spaces between words: a word there is matched anywhere.
_NO_SPACES = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff]")
_SECTION = re.compile(r"^\[([A-Za-z_*-]+)\]$")


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
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
        if line.startswith("re:"):
            try:
                pattern = re.compile(line[3:].strip(), re.IGNORECASE)
            except re.error as exc:
                raise GuardConfigError(f"keywords file line {number}: {exc}") from None
        elif _NO_SPACES.search(line):
            pattern = re.compile(re.escape(line), re.IGNORECASE)
        else:
            pattern = re.compile(rf"(?<!\w){re.escape(line)}(?!\w)", re.IGNORECASE)
        rules.append(_Rule(pattern, language))
    return rules


class KeywordsGuard(BaseGuard):
    name = "keywords"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rules: list[_Rule] | None = None

    def load(self) -> None:
        if self._rules is not None:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GuardConfigError(f"GUARD_KEYWORDS_FILE {self.path}: {exc.strerror}") from None
        self._rules = parse_keywords(text)

    def check(self, request: GuardRequest) -> GuardVerdict:
        self.load()
        assert self._rules is not None
        started = time.perf_counter()
        text = clip(request.prompt if request.response is None else request.response)
        language = normalise_language(request.language)
        for rule in self._rules:
            if rule.language not in (None, language):
                continue
            if rule.pattern.search(text):
                category = "keywords" if rule.language is None else f"keywords:{rule.language}"
                return GuardVerdict("unsafe", (category,), seconds=time.perf_counter() - started)
        return GuardVerdict("safe", seconds=time.perf_counter() - started)

    def health(self) -> dict:
        return {"name": self.name, "rules": len(self._rules or ())}
