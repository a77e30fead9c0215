"""Language detection and the reply-language choice."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import bot.kernel.language as language
from bot.cli.main import main
from bot.kernel.language import (
    CONFIDENT,
    Detection,
    choose_reply_language,
    clean,
    detect,
    is_other_language,
)
from bot.kernel.languages import SUPPORTED_LANGUAGES

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "langid"

SENTENCES = {
    "en": ["Hi, can you tell me how much a bus ticket to Penang costs?",
           "My son has had a fever since last night, should I take him to the clinic?"],
    "id": ["Besok di Jakarta hujan nggak sih?",
           "Gimana caranya bikin paspor baru di kantor imigrasi?"],
    "ms": ["Esok hujan tak kat Kuala Lumpur?",
           "Macam mana nak buat pasport baru kat pejabat imigresen?"],
    "tl": ["Magandang umaga po, magkano po ang pamasahe sa bus papuntang Baguio?",
           "May lagnat ang anak ko mula kagabi, dadalhin ko ba siya sa doktor?"],
    "vi": ["Chào bạn, cho mình hỏi vé xe khách đi Đà Lạt bao nhiêu tiền?",
           "Con tôi bị sốt từ tối qua, có nên đưa cháu đi khám không?"],
    "th": ["สวัสดีครับ ตั๋วรถทัวร์ไปเชียงใหม่ราคาเท่าไหร่ครับ"],
    "ta": ["வணக்கம், மதுரைக்கு பஸ் டிக்கெட் எவ்வளவு?"],
    "my": ["မနက်ဖြန် ရန်ကုန်မှာ မိုးရွာမလား။"],
    "km": ["ថ្ងៃស្អែកនៅភ្នំពេញភ្លៀងទេ?"],
    "lo": ["ມື້ອື່ນຢູ່ວຽງຈັນຝົນຈະຕົກບໍ່?"],
    "zh": ["明天新加坡会下雨吗？", "最近的醫院在哪裡？"],
}

FRAGMENTS = {
    "en": ["good morning", "how much", "see you later"],
    "id": ["makasih banyak", "nggak tahu", "lagi di mana"],
    "ms": ["tak tahu", "dah makan", "awak kat mana"],
    "tl": ["salamat po", "hindi ko alam", "magkano po"],
    "vi": ["cảm ơn bạn", "không biết", "bao nhiêu tiền"],
    "th": ["ขอบคุณครับ", "ไม่รู้"],
    "ta": ["நன்றி", "தெரியாது"],
    "my": ["ကျေးဇူးပါ", "မသိဘူး"],
    "km": ["អរគុណ", "មិនដឹងទេ"],
    "lo": ["ຂອບໃຈ", "ບໍ່ຮູ້"],
    "zh": ["谢谢", "多少钱"],
}


@pytest.mark.parametrize("expected,text", [(lang, text) for lang, texts in SENTENCES.items()
                                           for text in texts])
def test_sentences(expected, text):
    assert detect(text).language == expected


@pytest.mark.parametrize("expected,text", [(lang, text) for lang, texts in FRAGMENTS.items()
                                           for text in texts])
def test_fragments(expected, text):
    assert detect(text).language == expected


@pytest.mark.parametrize("expected,text", [
    ("en", "can or not lah, I go later"),                 # Singlish
    ("tl", "Sige, I'll call you mamaya"),                 # Taglish
    ("ms", "Jom makan, I belanja you"),                   # Manglish
    ("en", "Where can I get good nasi lemak near Jalan Besar?"),
    ("tl", "Grabe the traffic sa EDSA kanina"),
    ("ms", "Weh, you dah makan ke belum?"),
    ("id", "Gue udah otw, wait ya"),
])
def test_code_mixed_messages_go_to_their_matrix_language(expected, text):
    assert detect(text).language == expected


@pytest.mark.parametrize("text", [
    "Hola, ¿cómo estás? Quiero reservar una mesa para dos personas.",
    "Bonjour, je voudrais réserver une table pour deux personnes ce soir.",
])
def test_visitors_languages_are_not_read_as_ours(text):
    assert detect(text).language not in SUPPORTED_LANGUAGES


def test_scripts_outside_southeast_asia():
    assert detect("こんにちは、元気ですか").language == "ja"
    assert detect("안녕하세요, 반갑습니다").language == "ko"
    assert detect("Привет, как дела?").language == "ru"


def test_majority_script_wins():
    assert detect("ok ครับ").language == "th"
    assert detect("我想买iPhone").language == "zh"
    assert detect("I love ขอบคุณ very much my friend").language == "en"


@pytest.mark.parametrize("text", ["", "   ", "👍", "😂😂🙏", "https://shopee.co.id/abc?x=1",
                                  "www.example.com", "12345 678", "+62 812-3456-7890",
                                  "@someone", "/start", "?!...", "haha", "wkwkwk", "ok", ":D",
                                  "hmm ok 👍"])
def test_nothing_to_tell(text):
    assert detect(text) == Detection(None, 0.0)
    assert choose_reply_language(text, current="ms", hint="en", default="en") == "ms"


def test_clean():
    assert clean("Hi @bob, see https://x.co/z :) 123 ... it's sama-sama!") == \
        "Hi see it's sama-sama"
    assert clean("ขอบคุณครับ 🙏") == "ขอบคุณครับ"  # Thai vowel marks stay
    assert clean("mail me at a.b@example.com /help") == "mail me at"


def test_confidence_is_low_for_short_latin_text_and_high_for_sentences():
    assert detect("sama-sama").confidence < CONFIDENT
    assert detect("thanks").confidence < CONFIDENT
    assert detect("Saya nak pergi ke kedai sekejap, awak nak kirim apa-apa tak?").confidence \
        >= CONFIDENT


def test_a_conversation_keeps_its_language_on_short_or_empty_messages():
    for text in ["ok", "haha", "👍", "ok bro", "thanks", "lol", "https://maps.app/xyz", "7"]:
        assert choose_reply_language(text, current="ms", hint="en", default="en") == "ms"
    for text in ["ok", "sama-sama", "terima kasih"]:
        assert choose_reply_language(text, current="id", hint=None, default="en") == "id"


def test_a_confident_message_changes_the_language():
    assert choose_reply_language("Can you help me write an email to my landlord?",
                                 current="ms", hint="ms", default="en") == "en"
    assert choose_reply_language("ขอบคุณมากครับ ช่วยได้เยอะเลย", current="en", hint=None,
                                 default="en") == "th"


def test_malay_and_indonesian_switch_only_on_distinctive_words():
    # Words both use: stay.
    assert choose_reply_language("Saya mahu tanya tentang harga rumah di kawasan ini",
                                 current="id", hint=None, default="en") in ("id", "ms")
    assert choose_reply_language("Terima kasih atas bantuan anda semalam",
                                 current="id", hint=None, default="en") == "id"
    assert choose_reply_language("Selamat pagi, saya ada satu soalan",
                                 current="id", hint=None, default="en") == "id"
    # Clearly Malay, clearly Indonesian: switch.
    assert choose_reply_language("Macam mana nak pergi ke stesen bas dari sini? Saya tak tahu",
                                 current="id", hint=None, default="en") == "ms"
    assert choose_reply_language("Gimana caranya ke stasiun, aku nggak tahu jalannya",
                                 current="ms", hint=None, default="en") == "id"


def test_ambiguous_malay_indonesian_follows_the_hint_or_the_conversation():
    for text in ["terima kasih", "Saya tidak tahu", "Selamat pagi semua"]:
        assert choose_reply_language(text, current=None, hint="ms", default="en") == "ms"
        assert choose_reply_language(text, current=None, hint="id-ID", default="en") == "id"
        assert detect(text, prefer="ms").language == "ms"
        assert detect(text, prefer="id").language == "id"


def test_first_contact_falls_back_to_the_hint_then_the_default():
    assert choose_reply_language("Boleh saya tanya sesuatu tentang kereta api?", current=None,
                                 hint=None, default="en") in ("ms", "id")
    assert choose_reply_language("👍", current=None, hint="th-TH", default="en") == "th"
    assert choose_reply_language("", current=None, hint="fil", default="en") == "tl"
    assert choose_reply_language("haha", current=None, hint="in", default="en") == "id"
    assert choose_reply_language("haha", current=None, hint="zh-Hant", default="en") == "zh"
    assert choose_reply_language("👍", current=None, hint=None, default="vi") == "vi"
    # A detection beats the hint; a weak one loses to it.
    assert choose_reply_language("Magandang umaga po sa inyong lahat", current=None,
                                 hint="en", default="en") == "tl"
    assert choose_reply_language("sama-sama", current=None, hint="ms", default="en") == "ms"


def test_other_languages_come_back_as_their_code():
    assert choose_reply_language("Привет! Как дела? Где ближайшая аптека?", current=None,
                                 hint=None, default="en") == "ru"


def test_is_other_language():
    assert not is_other_language("Saya tidak tahu jawapan kepada soalan itu.", "ms")
    assert not is_other_language("Saya tidak tahu jawaban pertanyaan itu.", "id")
    assert not is_other_language("Saya tidak tahu bagaimana untuk menjawab.", "id")
    assert is_other_language("Aku nggak tahu banget gimana jawabnya, soalnya bingung.", "ms")
    assert is_other_language("I really do not know how to answer that question.", "th")
    assert not is_other_language("ok", "th")


def test_deterministic():
    for text in ["ok bro", "terima kasih", "Sige na", "xin chao", "boleh juga", "at"]:
        answers = {detect(text) for _ in range(20)}
        assert len(answers) == 1


def test_works_without_network(monkeypatch):
    """The model ships in the py3langid wheel: loading it opens no connection."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(language, "_model", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert detect("Selamat pagi, apa khabar semua?").language == "ms"


def _rows(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            lang, text = line.split("\t", 1)
            rows.append((lang, text))
    return rows


@pytest.mark.parametrize("name,floor", [("sentences.tsv", 0.97), ("fragments.tsv", 0.93)])
def test_accuracy_on_the_project_samples(name, floor):
    rows = _rows(name)
    right: dict[str, list[int]] = {}
    for lang, text in rows:
        right.setdefault(lang, []).append(detect(text).language == lang)
    macro = sum(sum(hits) / len(hits) for hits in right.values()) / len(right)
    assert len(right) == 11 and all(len(hits) >= 60 for hits in right.values())
    assert macro >= floor, f"macro accuracy {macro:.3f} on {name}"


def test_throughput():
    rows = _rows("sentences.tsv") + _rows("fragments.tsv")
    texts = [text for _, text in rows]
    texts = (texts * (5000 // len(texts) + 1))[:5000]
    detect(texts[0])  # load the model
    start = time.perf_counter()
    for text in texts:
        detect(text)
    per_second = len(texts) / (time.perf_counter() - start)
    assert per_second > 1000, f"{per_second:.0f} lines/s"


def test_cli_prints_one_code_per_line():
    lines = ["Selamat pagi, saya nak tanya harga tiket bas", "👍", "kumusta ka na po",
             "", "ขอบคุณครับ", "https://example.com", "Where is the nearest MRT station?"]
    result = CliRunner().invoke(main, ["detect-language"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ms", "und", "tl", "und", "th", "und", "en"]


def test_cli_many_lines_in_order():
    lines = ["Good morning everyone", "Selamat pagi semua, apa khabar? Dah makan?",
             "magandang umaga po"] * 700
    result = CliRunner().invoke(main, ["detect-language"], input="\n".join(lines))
    assert result.exit_code == 0
    assert result.output.splitlines() == ["en", "ms", "tl"] * 700
