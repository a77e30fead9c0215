"""Split a long reply into messages a platform accepts.

`split_text` cuts where a reader would pause: between paragraphs, then lines, then sentences,
then words, and only as a last resort inside a word, never inside a character cluster (a Thai
consonant and its vowel and tone marks, an emoji and its modifiers, a Khmer subscript). Parts
are stripped of surrounding whitespace and no non-whitespace character is lost or reordered.

Fenced code blocks (```lang ... ```) are kept whole where they fit. One that must be split is
closed at the end of a part and reopened, with the same fence and info string, at the start of
the next, so each part renders on its own. That is the one case where parts hold text the input
did not: the added fence lines. Blocks too large for their fences to be worth repeating (fence
lines over half the limit) are split as plain text.

`length` measures a part the way the platform does: `len` (code points) for Telegram, and
`utf16_len` for LINE, which counts UTF-16 code units.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["split_text", "utf16_len"]

Length = Callable[[str], int]


def utf16_len(s: str) -> int:
    """The length of `s` in UTF-16 code units: characters outside the BMP count two."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


# --- where a cut may fall -------------------------------------------------------------------

def _chars(first: int, last: int) -> str:
    return "".join(map(chr, range(first, last + 1)))


# Thai and Lao vowels and tone marks that sit on a consonant; SARA AM (U+0E33, U+0EB3) is a
# spacing mark but belongs to the syllable before it too.
_NO_CUT_BEFORE = frozenset(
    "\u0e31\u0e33" + _chars(0x0E34, 0x0E3A) + _chars(0x0E47, 0x0E4E)  # Thai
    + "\u0eb1\u0eb3" + _chars(0x0EB4, 0x0EBC) + _chars(0x0EC8, 0x0ECE)  # Lao
    + "\u200d"  # zero width joiner
)
# Characters that bind to what follows: ZWJ, Khmer COENG and Myanmar virama (the next
# consonant is written below), Thai and Lao vowels written before their consonant.
_NO_CUT_AFTER = frozenset(
    "\u200d\u17d2\u1039" + _chars(0x0E40, 0x0E44) + _chars(0x0EC0, 0x0EC4)
)


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _can_cut_before(text: str, index: int) -> bool:
    """Whether text[:index] / text[index:] keeps every character cluster whole."""
    if index <= 0 or index >= len(text):
        return True
    char, prev = text[index], text[index - 1]
    if "\udc00" <= char <= "\udfff" and "\ud800" <= prev <= "\udbff":
        return False  # a surrogate pair (only in strings decoded with surrogatepass)
    if prev == "\r" and char == "\n":
        return False
    if char in _NO_CUT_BEFORE or prev in _NO_CUT_AFTER:
        return False
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return False
    code = ord(char)
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return False  # emoji skin tone modifier, emoji tag sequence (subdivision flags)
    if _is_regional_indicator(char) and _is_regional_indicator(prev):
        run = 0
        while index - run - 1 >= 0 and _is_regional_indicator(text[index - run - 1]):
            run += 1
        return run % 2 == 0  # flags are pairs: cut only between pairs
    return True


def _is_low_surrogate_pair(text: str, index: int) -> bool:
    return (0 < index < len(text) and "\udc00" <= text[index] <= "\udfff"
            and "\ud800" <= text[index - 1] <= "\udbff")


# --- fenced code blocks ---------------------------------------------------------------------

_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_FENCE_OPEN = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})[ \t]*")


@dataclass(frozen=True)
class _Block:
    """A fenced code block; offsets into the text."""

    start: int  # start of the opening fence line
    body_start: int  # just after the opening fence line
    body_end: int  # start of the closing fence line (len(text) when unclosed)
    end: int  # just after the closing fence (before its newline)
    first: int  # first non-whitespace character of the body (body_end when blank)
    opener: str  # the opening fence line, stripped ("```python")
    closer: str  # the closing fence line, stripped (the opening fence when unclosed)

    def holds(self, index: int) -> bool:
        """A cut at `index` falls inside the body, after its first line of code."""
        return self.first < index < self.body_end

    def forbids(self, index: int) -> bool:
        """A cut at `index` would split a fence line or leave an empty block."""
        return self.start < index <= self.first or self.body_end <= index < self.end


def _find_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    lines = [(m.start(), m.end(), m.group().rstrip("\r\n")) for m in _LINE.finditer(text)]
    index = 0
    while index < len(lines):
        start, after, content = lines[index]
        index += 1
        opening = _FENCE_OPEN.fullmatch(content)
        if not opening:
            continue
        fence, info = opening["fence"], opening["info"]
        if fence[0] == "`" and "`" in info:
            continue  # ```inline``` code, not a fence
        body_end = end = len(text)
        closer = fence
        while index < len(lines):
            line_start, _, line = lines[index]
            index += 1
            closing = _FENCE_CLOSE.fullmatch(line)
            if (closing and closing["fence"][0] == fence[0]
                    and len(closing["fence"]) >= len(fence)):
                body_end, end, closer = line_start, line_start + len(line), line.strip()
                break
        body = text[after:body_end]
        stripped = len(body) - len(body.lstrip())
        first = after + stripped if body.strip() else body_end
        blocks.append(_Block(start, min(after, body_end), body_end, end, first,
                             content.strip(), closer))
    return blocks


# --- candidate cut points -------------------------------------------------------------------

_PARAGRAPH = re.compile(r"\n[ \t\r]*\n")
_NEWLINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?](?=\s)|[。！？။។]")
_SPACE = re.compile(r"[\s\u200b]+")
_BLANK_LINES = re.compile(r"(?:[ \t\r]*\n)+")

# Preference order. Cuts inside a code block come after every cut outside one.
_OUTSIDE_LEVELS = 4  # paragraph, line, sentence, space
_CODE_LINE, _CODE_SPACE = 4, 5


def _candidates(text: str, blocks: list[_Block]) -> list[list[int]]:
    found: list[set[int]] = [set() for _ in range(6)]
    block: _Block | None
    for level, pattern in enumerate((_PARAGRAPH, _NEWLINE, _SENTENCE, _SPACE)):
        for match in pattern.finditer(text):
            found[level].add(match.end())
    for block in blocks:
        found[0].update((block.start, block.end))
    levels: list[list[int]] = [[] for _ in range(6)]
    starts = [block.start for block in blocks]
    for level in range(_OUTSIDE_LEVELS):
        for cut in sorted(found[level]):
            block = _block_at(blocks, starts, cut)
            if block is None:
                levels[level].append(cut)
            elif block.holds(cut) and level != 2:  # no sentences in code
                levels[_CODE_SPACE if level == 3 else _CODE_LINE].append(cut)
    for level in (_CODE_LINE, _CODE_SPACE):
        levels[level].sort()
    return levels


def _block_at(blocks: list[_Block], starts: list[int], index: int) -> _Block | None:
    """The block whose fence lines or body a cut at `index` would fall within."""
    found = bisect.bisect_left(starts, index) - 1
    if found >= 0 and blocks[found].start < index < blocks[found].end:
        return blocks[found]
    return None


# --- splitting ------------------------------------------------------------------------------


class _Splitter:
    def __init__(self, text: str, limit: int, length: Length) -> None:
        self.text = text
        self.limit = limit
        self.length = length
        self.blocks = [block for block in _find_blocks(text) if self._repeatable(block)]
        self.starts = [block.start for block in self.blocks]
        self.levels = _candidates(text, self.blocks)

    def _repeatable(self, block: _Block) -> bool:
        overhead = self.length(block.opener + "\n") + self.length("\n" + block.closer)
        return 2 * overhead <= self.limit

    def _inside(self, index: int) -> _Block | None:
        block = _block_at(self.blocks, self.starts, index)
        return block if block is not None and block.holds(index) else None

    def _forbidden(self, index: int) -> bool:
        block = _block_at(self.blocks, self.starts, index)
        return block is not None and block.forbids(index)

    def part(self, pos: int, cut: int) -> str:
        """The message holding text[pos:cut], with fences reopened and closed as needed."""
        chunk = self.text[pos:cut]
        opened = self._inside(pos)
        closed = self._inside(cut)
        head = opened.opener + "\n" if opened else ""
        if closed:
            return (head + chunk.rstrip() + "\n" + closed.closer).strip()
        return (head + chunk).strip()

    def fits(self, pos: int, cut: int) -> bool:
        return self.length(self.part(pos, cut)) <= self.limit

    def skip_space(self, pos: int) -> int:
        """Where the next part starts: past whitespace, or past blank lines inside code."""
        text = self.text
        block = self._inside(pos)
        if block is None:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            return pos
        if not text[pos:block.body_end].strip():
            # Only blank lines were left of the block, and the last part closed it already.
            return self.skip_space(block.end)
        blank = _BLANK_LINES.match(text, pos, block.body_end)
        return blank.end() if blank else pos

    def window(self, pos: int) -> int:
        """The furthest cut whose raw text fits, then past any whitespace that follows."""
        text, limit = self.text, self.limit
        opened = self._inside(pos)
        head = opened.opener + "\n" if opened else ""

        def raw_fits(cut: int) -> bool:
            return self.length(head + text[pos:cut]) <= limit

        low, step = pos, max(limit, 1)
        while pos + step < len(text) and raw_fits(pos + step):
            low, step = pos + step, step * 2
        high = min(len(text), pos + step)
        while low < high:  # the largest cut in [low, high] that fits
            middle = (low + high + 1) // 2
            if raw_fits(middle):
                low = middle
            else:
                high = middle - 1
        while low < len(text) and text[low].isspace():
            low += 1
        return low

    def choose_cut(self, pos: int) -> int:
        furthest = self.window(pos)
        for level in self.levels:
            index = bisect.bisect_right(level, furthest) - 1
            while index >= 0 and level[index] > pos:
                cut = level[index]
                if self.fits(pos, cut):
                    return cut
                index -= 1
        start = min(furthest, len(self.text) - 1)
        checks: tuple[Callable[[int], bool], ...] = (
            lambda cut: not self._forbidden(cut) and _can_cut_before(self.text, cut),
            lambda cut: not self._forbidden(cut) and not _is_low_surrogate_pair(self.text, cut),
            lambda cut: not _is_low_surrogate_pair(self.text, cut),
            lambda cut: True,
        )
        for allowed in checks:
            for cut in range(start, pos, -1):
                if allowed(cut) and self.fits(pos, cut):
                    return cut
        raise ValueError(f"limit {self.limit} is too small for {self.text[pos]!r}")

    def split(self) -> list[str]:
        parts: list[str] = []
        pos = self.skip_space(0)
        while pos < len(self.text):
            if self.fits(pos, len(self.text)):
                parts.append(self.part(pos, len(self.text)))
                break
            cut = self.choose_cut(pos)
            part = self.part(pos, cut)
            if part:
                parts.append(part)
            pos = self.skip_space(cut)
        return parts


def split_text(text: str, limit: int, *, length: Length = len) -> list[str]:
    """Split `text` into parts with ``length(part) <= limit``, cutting where a reader pauses.

    Boundaries are preferred in this order: a blank line, a line break, a sentence end
    (". ", "! ", "? ", "。", "！", "？", Burmese "။", Khmer "។"), a space (or zero width space,
    which Thai, Lao, Khmer and Burmese text may use between words), and finally any point that
    does not split a character cluster. A fenced code block that must be split is closed and
    reopened around the cut (see the module docstring).

    Whitespace-only text gives ``[]``. Raises ValueError when `limit` is below 1 or a single
    character is longer than `limit`.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    return _Splitter(text, limit, length).split()
