"""Splitting replies: limits kept, nothing lost, cuts where a reader pauses."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.textsplit import _can_cut_before, _find_blocks, split_text, utf16_len


def _non_space(text: str) -> str:
    return "".join(text.split())


def _is_fence_line(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(("```", "~~~"))


def _variants(part: str) -> list[str]:
    """The part as written, then without a fence line the splitter may have added."""
    lines = part.split("\n")
    found = [part]
    first = _is_fence_line(lines[0]) and len(lines) > 1
    last = _is_fence_line(lines[-1]) and len(lines) > 1
    if first:
        found.append("\n".join(lines[1:]))
    if last:
        found.append("\n".join(lines[:-1]))
    if first and last and len(lines) > 2:
        found.append("\n".join(lines[1:-1]))
    return found


def assert_reassembles(text: str, parts: list[str], *, fences_added: bool = False) -> None:
    """Parts joined reproduce the text's non-whitespace characters, in order.

    With `fences_added`, a part may also start with a reopened fence or end with a closing one
    that the text did not have at that point.
    """
    expected = _non_space(text)

    def match(index: int, offset: int) -> bool:
        if index == len(parts):
            return offset == len(expected)
        options = _variants(parts[index]) if fences_added else [parts[index]]
        for option in options:
            chars = _non_space(option)
            if expected.startswith(chars, offset) and match(index + 1, offset + len(chars)):
                return True
        return False

    assert match(0, 0), (text, parts)


def assert_well_formed(parts: list[str], limit: int, length: Callable[[str], int]) -> None:
    for part in parts:
        assert part, parts
        assert part == part.strip()
        assert length(part) <= limit, (length(part), limit, part)


# --- examples -------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_text("  Hello there!  ", 100) == ["Hello there!"]


def test_empty_and_blank_text() -> None:
    assert split_text("", 10) == []
    assert split_text(" \n\n\t ", 10) == []


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 0)


def test_prefers_paragraphs() -> None:
    text = "First paragraph here.\nStill first.\n\nSecond one. With two sentences."
    assert split_text(text, 40) == ["First paragraph here.\nStill first.",
                                    "Second one. With two sentences."]


def test_then_lines() -> None:
    text = "line one is here\nline two is here\nline three"
    assert split_text(text, 35) == ["line one is here\nline two is here", "line three"]


def test_then_sentences() -> None:
    text = "One sentence here. Another one there! A third? Yes."
    assert split_text(text, 30) == ["One sentence here.", "Another one there! A third?",
                                    "Yes."]


def test_cjk_sentences() -> None:
    text = "今天天气很好。我们去公园散步吧！你觉得怎么样？"
    assert split_text(text, 10) == ["今天天气很好。", "我们去公园散步吧！", "你觉得怎么样？"]


def test_burmese_and_khmer_sentence_marks() -> None:
    burmese = "မင်္ဂလာပါ။ နေကောင်းလား။"
    assert split_text(burmese, 15) == ["မင်္ဂလာပါ။", "နေကောင်းလား။"]
    khmer = "សួស្ដី។ សុខសប្បាយទេ។"
    assert split_text(khmer, 14) == ["សួស្ដី។", "សុខសប្បាយទេ។"]


def test_then_spaces() -> None:
    assert split_text("alpha beta gamma delta", 11) == ["alpha beta", "gamma delta"]


def test_hard_cut_when_no_space() -> None:
    assert split_text("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_thai_breaks_at_spaces_between_phrases() -> None:
    text = "สวัสดีครับ วันนี้อากาศดีมาก ไปเที่ยวกันไหม"
    parts = split_text(text, 20)
    assert parts == ["สวัสดีครับ", "วันนี้อากาศดีมาก", "ไปเที่ยวกันไหม"]


def test_thai_hard_cut_keeps_marks_with_their_consonant() -> None:
    text = "ที่นี่น้ำใสมากและปลาก็เยอะด้วยนะครับ" * 3
    for limit in range(3, 30):
        parts = split_text(text, limit)
        assert_well_formed(parts, limit, len)
        assert "".join(parts) == text
        for part in parts:
            assert not unicodedata.combining(part[0])
            assert unicodedata.category(part[0]) not in ("Mn", "Mc"), (limit, parts)
            assert part[0] != "\u0e33"
            # A vowel written before its consonant stays with it.
            assert part[-1] not in "เแโใไ", (limit, parts)


def test_combining_sequences_stay_whole() -> None:
    text = "e\u0301" * 10  # é as e + combining acute
    parts = split_text(text, 3)
    assert all(part[0] == "e" for part in parts)
    assert "".join(parts) == text


def test_khmer_subscript_consonant_stays_with_coeng() -> None:
    text = "ស្រ្តី" * 6  # one cluster of six code points, repeated
    for limit in range(6, 20):
        parts = split_text(text, limit)
        assert "".join(parts) == text
        assert not any(part.endswith("\u17d2") for part in parts)


def test_emoji_with_utf16_length() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("😀") == 2
    assert utf16_len("a😀b") == 4
    assert utf16_len("👍🏽") == 4
    assert utf16_len("ไทย") == 3
    assert utf16_len("") == 0
    text = "😀" * 5
    assert split_text(text, 4, length=utf16_len) == ["😀😀", "😀😀", "😀"]
    assert split_text(text, 4) == ["😀😀😀😀", "😀"]


def test_emoji_sequences_stay_whole() -> None:
    thumbs = "👍🏽" * 4  # thumbs up with a skin tone
    assert split_text(thumbs, 4, length=utf16_len) == ["👍🏽"] * 4
    family = "👨\u200d👩\u200d👧"
    assert split_text(family * 3, 8, length=utf16_len) == [family] * 3
    flags = "🇹🇭🇸🇬🇲🇾🇮🇩"
    assert split_text(flags, 6, length=utf16_len) == ["🇹🇭", "🇸🇬", "🇲🇾", "🇮🇩"]
    assert split_text(flags, 3) == ["🇹🇭", "🇸🇬", "🇲🇾", "🇮🇩"]


def test_cluster_longer_than_limit_is_cut_anyway() -> None:
    text = "a" + "\u0301" * 6
    parts = split_text(text, 3)
    assert "".join(parts) == text
    assert all(len(part) <= 3 for part in parts)


def test_character_longer_than_limit_raises() -> None:
    with pytest.raises(ValueError):
        split_text("😀", 1, length=utf16_len)


def test_cut_rules() -> None:
    assert not _can_cut_before("กี่", 1)
    assert not _can_cut_before("กี่", 2)
    assert not _can_cut_before("เก", 1)
    assert not _can_cut_before("\r\n", 1)
    assert _can_cut_before("ab", 1)
    assert not _can_cut_before("\ud83d\ude00", 1)  # a surrogate pair (surrogatepass)


CODE = "\n".join(f"print({i})" for i in range(12))


def test_code_block_kept_whole_when_it_fits() -> None:
    block = f"```python\n{CODE}\n```"
    text = f"Here is code:\n\n{block}\n\nThat is all."
    assert split_text(text, len(block) + 15) == [f"Here is code:\n\n{block}", "That is all."]
    # Too long to join the prose before it: the cut goes before the block, not inside it.
    assert split_text(text, len(block) + 5) == ["Here is code:", block, "That is all."]


def test_code_block_split_is_closed_and_reopened() -> None:
    text = f"Intro.\n\n```python\n{CODE}\n```\n\nAfter."
    parts = split_text(text, 60)
    assert parts[0] == "Intro."
    assert parts[1].startswith("```python\nprint(0)") and parts[1].endswith("\n```")
    assert all(part.startswith("```python\n") for part in parts[1:])
    assert parts[-1].endswith("```\n\nAfter.")
    for part in parts:
        assert part.count("```") % 2 == 0
        assert len(part) <= 60
    assert_reassembles(text, parts, fences_added=True)


def test_code_split_keeps_indentation() -> None:
    body = "\n".join(f"    line_{i} = {i}" for i in range(10))
    text = f"```py\ndef f():\n{body}\n```"
    parts = split_text(text, 70)
    assert len(parts) > 1
    for part in parts[1:]:
        assert part.split("\n")[1].startswith("    line_")


def test_tilde_fence_and_longer_closer() -> None:
    text = "~~~~\n" + CODE + "\n~~~~~~"
    parts = split_text(text, 50)
    assert parts[0].startswith("~~~~\n") and parts[0].endswith("\n~~~~~~")
    assert parts[-1].startswith("~~~~\n") and parts[-1].endswith("\n~~~~~~")
    assert_reassembles(text, parts, fences_added=True)


def test_unclosed_fence_is_closed_at_the_cut() -> None:
    text = "```js\n" + "\n".join(f"console.log({i});" for i in range(10))
    parts = split_text(text, 60)
    assert len(parts) > 1
    assert parts[0].endswith("\n```")
    assert parts[-1].startswith("```js\n") and not parts[-1].endswith("```")
    assert_reassembles(text, parts, fences_added=True)


def test_inline_triple_backticks_are_not_a_fence() -> None:
    text = "Use ```code``` inline. " * 5
    parts = split_text(text, 40)
    assert_reassembles(text, parts)


def test_code_block_with_trailing_blank_lines() -> None:
    text = "```py\nx = 1\n" + "\n" * 40 + "```\nafter"
    parts = split_text(text, 30)
    assert parts == ["```py\nx = 1\n```", "after"]
    assert_reassembles(text, parts)


def test_fences_too_large_for_the_limit_are_split_as_text() -> None:
    text = "```python\nabcdefghijklmnop\n```"
    parts = split_text(text, 12)
    assert_well_formed(parts, 12, len)
    assert_reassembles(text, parts)


def test_telegram_sized_reply() -> None:
    paragraph = ("Singapore is a city-state in Southeast Asia. It has four official languages. "
                 * 8).strip()
    text = "\n\n".join([paragraph] * 30)
    parts = split_text(text, 4096)
    assert all(len(part) <= 4096 for part in parts)
    assert all(part.endswith("languages.") for part in parts)
    assert_reassembles(text, parts)


# --- properties -----------------------------------------------------------------------------

_PIECES = st.sampled_from([
    " ", "  ", "\n", "\n\n", "\n \n", "\t", ". ", "! ", "? ", "。", "！", "？", "။", "។", ",",
    "word", "another", "snake_case", "สวัสดีครับ", "น้ำใส", "ສະບາຍດີ", "မင်္ဂလာပါ", "ស្រ្តី",
    "வணக்கம்", "Tiếng Việt", "中文字", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇹🇭🇸🇬", "e\u0301",
    "\u200b", "x" * 30,
])
_NO_FENCE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="`~"), max_size=60)
_PLAIN = st.lists(st.one_of(_PIECES, _NO_FENCE_TEXT), max_size=40).map("".join)
_LENGTHS = st.sampled_from([len, utf16_len])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_PLAIN, limit=st.integers(min_value=2, max_value=120), length=_LENGTHS)
def test_property_plain_text(text: str, limit: int, length: Callable[[str], int]) -> None:
    parts = split_text(text, limit, length=length)
    assert_well_formed(parts, limit, length)
    assert_reassembles(text, parts)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), limit=st.integers(min_value=1, max_value=50))
def test_property_any_text(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert_well_formed(parts, limit, len)
    assert_reassembles(text, parts, fences_added=True)


_CODE_LINE = st.one_of(
    st.sampled_from(["", "    indented = 1", "x = 'สวัสดี'  # 😀", "return a < b && c"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc"),
                                   blacklist_characters="`~"), max_size=50),
)


@st.composite
def _fenced_documents(draw: st.DrawFn) -> str:
    chunks = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if draw(st.booleans()):
            chunks.append(draw(_PLAIN))
        else:
            fence = draw(st.sampled_from(["```", "~~~", "````"]))
            language = draw(st.sampled_from(["", "python", "js", "c++"]))
            # Code starts with a line of code: a block opening on a run of blank lines longer
            # than half the limit is the one case the splitter leaves unbalanced.
            lines = [draw(st.sampled_from(["import os", "int main() {", "$ ls -la"]))]
            lines += draw(st.lists(_CODE_LINE, max_size=15))
            chunks.append(f"{fence}{language}\n" + "\n".join(lines) + f"\n{fence}")
    return "\n\n".join(chunks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_fenced_documents(), limit=st.integers(min_value=4, max_value=200),
       length=_LENGTHS)
def test_property_fenced_documents(text: str, limit: int,
                                   length: Callable[[str], int]) -> None:
    parts = split_text(text, limit, length=length)
    assert_well_formed(parts, limit, length)
    assert_reassembles(text, parts, fences_added=True)
    # When every block's fences fit twice in a part, every part is balanced on its own.
    blocks = _find_blocks(text)
    assume(all(2 * (length(b.opener) + length(b.closer) + 2) <= limit for b in blocks))
    for part in parts:
        for block in _find_blocks(part):
            assert block.body_end < len(part), (part, parts)  # closed
