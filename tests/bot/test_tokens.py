"""The knowledge base's tokens, chosen by script (bot/kernel/tokens.py)."""

from __future__ import annotations

import time

import pytest

from bot.kernel.tokens import estimate_tokens, normalise, tokens


def test_spaced_words_give_the_word_and_its_padded_trigrams():
    assert tokens("Clinics") == ["clinics", "^cl", "cli", "lin", "ini", "nic", "ics", "cs$"]


def test_spaced_words_pair_with_the_word_before():
    # Vietnamese writes a word as syllables with spaces: "bác sĩ" (doctor) is also "bac_si".
    assert "bac_si" in tokens("Khám bác sĩ")
    assert "kham_bac" in tokens("Khám bác sĩ")
    # A pair never spans a run of an unspaced script.
    assert "a_b" not in tokens("a ก b") and "a_b" in tokens("a b")


def test_chinese_gives_characters_and_their_pairs():
    assert tokens("诊所周日") == ["诊", "所", "周", "日", "诊所", "所周", "周日"]


def test_digits_and_latin_words_never_swallow_an_unspaced_run():
    # "12岁以下儿童" was one word (digits start a word run, Han letters continued it).
    assert tokens("为12岁以下儿童登记") == [
        "为", "12", "^12", "12$", "岁", "以", "下", "儿", "童", "登", "记",
        "岁以", "以下", "下儿", "儿童", "童登", "登记"]
    assert "line" in tokens("ทางLINEของคลินิก")
    assert "ของ" in tokens("ทางLINEของคลินิก")


def test_thai_is_cut_into_dictionary_words():
    assert tokens("ห้องจ่ายยาเปิดเวลา") == ["ห้อง", "จ่าย", "ยา", "เปิด", "เวลา"]
    # NFKC splits SARA AM; it is joined again before the dictionary sees it.
    assert "ทำ" in tokens("ต้องทำอย่างไร")


def test_burmese_is_cut_into_syllables():
    # A consonant with an asat (် U+103A) closes the syllable before it; a consonant stacked
    # over another (virama U+1039) keeps the two together (as Myanmar syllable breakers do).
    assert tokens("ဆေးခန်း") == ["ဆေး", "ခန်း"]
    assert tokens("ချိန်းဆိုရက်") == ["ချိန်း", "ဆို", "ရက်"]
    assert tokens("ကမ္ဘာကြီး") == ["ကမ္ဘာ", "ကြီး"]
    # Punctuation (။ U+104B, Khmer ។ U+17D4) is no token and no part of one.
    assert tokens("ဆေးခန်း။") == ["ဆေး", "ခန်း"]
    assert tokens("ពេទ្យ។") == tokens("ពេទ្យ")


def test_lao_is_cut_into_clusters_and_khmer_into_trigrams():
    # A preposed vowel (ເ) belongs to the consonant after it.
    assert tokens("ເປີດ") == ["ເປີ", "ດ"]
    assert tokens("ຄລີນິກ") == ["ຄ", "ລີ", "ນິ", "ກ"]
    assert tokens("គ្លីនិក") == ["គ្ល", "្លី", "លីន", "ីនិ", "និក"]


def test_tamil_marks_stay_inside_the_word():
    assert tokens("மருத்துவர்")[0] == "மருத்துவர்"


def test_digits_and_latin_marks_are_folded():
    assert normalise("๑๒ ១២ ၁၂ ໑໒") == "12 12 12 12"
    assert tokens("Thứ Bảy")[:1] == ["thu"]
    assert "bay" in tokens("Thứ Bảy")
    assert tokens("Đà Nẵng")[0] == "da"


def test_a_hostile_text_is_tokenised_in_linear_time():
    started = time.perf_counter()
    tokens("ก" * 50_000 + "a" * 50_000 + "\u0301" * 50_000)
    assert time.perf_counter() - started < 5


HOSTILE = {
    "thai consonants": "ก" * 100_000,
    "thai marks": "\u0e48" * 100_000,
    "thai words": "เที่ยงตรงไปหาหมอ" * 6_250,
    "burmese stacks": "က\u1039" * 50_000,
    "burmese asats": "က\u103a" * 50_000,
    "burmese marks": "\u103a" * 100_000,
    "lao vowels": "ເ" * 100_000,
    "khmer coengs": "ក\u17d2" * 50_000,
    "han": "诊" * 100_000,
    "digits in han": "1诊" * 50_000,
    "latin words": "ab " * 33_334,
    "latin marks": "a" + "\u0301" * 99_999,
    "mixed scripts": "aก1ကເក诊 " * 11_112,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_100k_characters_of_hostile_text_take_linear_time(name):
    """Each hostile shape at 100k characters takes at most a few times what 10k take, times
    ten (a quadratic pattern would take a hundred times): best of three, on CPU time."""
    text = HOSTILE[name]
    tokens(text[:1000])  # the Thai dictionary loads once

    def best(sample: str) -> float:
        times = []
        for _ in range(3):
            started = time.process_time()
            tokens(sample)
            times.append(time.process_time() - started)
        return min(times)

    small, large = best(text[:10_000]), best(text[:100_000])
    assert large < 30 * max(small, 0.005)
    assert large < 10


def test_estimate_counts_unspaced_scripts_higher():
    assert estimate_tokens("a" * 400) == 101
    assert estimate_tokens("ก" * 400) == 201
