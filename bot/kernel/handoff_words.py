"""Does a message ask for a person? Word lists in the eleven languages, matched without regex.

`handoff_intent(text)` answers `Intent.SURE` (hold the conversation now), `Intent.UNSURE` (ask
the person to confirm with /human) or None. The text is normalised (NFKC, casefold, punctuation
to spaces, whitespace collapsed) and searched with plain substring tests: linear in the text,
no regular expression on user text. Space-separated scripts match on word boundaries (the
phrase padded with spaces); Thai, Lao, Khmer, Burmese and Chinese, written without spaces
between words, match as substrings.

Every language's list is checked whatever the detected language: people mix English words
("admin", "customer service") into Malay or Thai.

Rules: a strong phrase in a short message (at most `SHORT_WORDS` words and `SHORT_CHARS`
characters) is SURE; a strong phrase in a longer message, or a weak word in a very short
message (at most `VERY_SHORT_WORDS` words), is UNSURE ("what is a human agent in AI?" keeps its
answer). The lists of my, km, lo and ta await a native speaker's review.
"""

from __future__ import annotations

import enum
import unicodedata

SHORT_WORDS = 12
SHORT_CHARS = 80
VERY_SHORT_WORDS = 4


class Intent(enum.StrEnum):
    SURE = "sure"
    UNSURE = "unsure"


#: language -> (strong phrases, weak words).
WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("talk to a human", "speak to a human", "talk to a person", "speak to a person",
            "real person", "real human", "human agent", "live agent", "customer service",
            "customer support", "talk to someone", "speak to someone", "connect me to a person",
            "connect me to a human"),
           ("human", "agent", "operator", "person", "staff", "representative", "admin")),
    "id": (("bicara dengan manusia", "bicara dengan orang", "bicara dengan petugas",
            "hubungi petugas", "minta petugas", "mau ngomong sama orang", "orang sungguhan",
            "operator manusia", "layanan pelanggan"),
           ("manusia", "petugas", "operator", "admin")),
    "ms": (("bercakap dengan manusia", "cakap dengan orang", "bercakap dengan pegawai",
            "hubungi pegawai", "orang sebenar", "ejen manusia", "khidmat pelanggan"),
           ("manusia", "pegawai", "ejen", "operator", "admin")),
    "tl": (("makipag usap sa tao", "kausapin ang tao", "makausap ang tao", "totoong tao",
            "tunay na tao", "ahente ng tao"),
           ("tao", "ahente", "operator", "admin")),
    "th": (("คุยกับคน", "ขอคุยกับคน", "คุยกับเจ้าหน้าที่", "ขอคุยกับเจ้าหน้าที่",
            "ติดต่อเจ้าหน้าที่", "ขอสายเจ้าหน้าที่", "คนจริง", "พนักงานตัวจริง"),
           ("เจ้าหน้าที่", "แอดมิน", "พนักงาน")),
    "vi": (("nói chuyện với người thật", "gặp người thật", "gặp nhân viên",
            "nói chuyện với nhân viên", "gặp tư vấn viên", "chăm sóc khách hàng"),
           ("nhân viên", "tư vấn viên", "người thật")),
    "ta": (("மனிதரிடம் பேச", "ஒரு நபரிடம் பேச", "அதிகாரியிடம் பேச", "ஊழியரிடம் பேச",
            "வாடிக்கையாளர் சேவை", "உண்மையான நபர்"),
           ("மனிதர்", "அதிகாரி", "ஊழியர்")),
    "my": (("လူနဲ့ပြောချင်", "လူနှင့်ပြောချင်", "ဝန်ထမ်းနဲ့ပြော", "လူအစစ်", "ဖောက်သည်ဝန်ဆောင်မှု"),
           ("ဝန်ထမ်း", "အက်ဒမင်")),
    "km": (("និយាយជាមួយមនុស្ស", "និយាយជាមួយបុគ្គលិក", "មនុស្សពិត", "សេវាអតិថិជន"),
           ("បុគ្គលិក", "មនុស្ស")),
    "lo": (("ລົມກັບຄົນ", "ລົມກັບພະນັກງານ", "ຕິດຕໍ່ພະນັກງານ", "ຄົນແທ້", "ບໍລິການລູກຄ້າ"),
           ("ພະນັກງານ", "ແອັດມິນ")),
    "zh": (("转人工", "轉人工", "人工客服", "真人客服", "找真人", "和真人", "跟真人", "人工服务",
            "人工服務"),
           ("客服", "真人", "工作人员")),
}

#: A very short message in a script written without spaces (characters, not words).
VERY_SHORT_UNSPACED = 12

#: Written without spaces between words: matched as substrings.
_UNSPACED = frozenset({"th", "lo", "km", "my", "zh"})


def normalise(message: str) -> str:
    """NFKC, casefold, punctuation and symbols to spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", message).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PSZC" and c not in "\u200b\u200c\u200d"
                   else c for c in folded)
    return " ".join(kept.split())


def _found(phrase: str, padded: str, unspaced: bool) -> bool:
    if unspaced:
        return phrase in padded
    return f" {phrase} " in padded


_NORMALISED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    language: (tuple(normalise(p) for p in strong), tuple(normalise(w) for w in weak))
    for language, (strong, weak) in WORDS.items()
}


def handoff_intent(message: str) -> Intent | None:
    """SURE, UNSURE or None for one message (see the module docstring)."""
    text = normalise(message)
    if not text:
        return None
    padded = f" {text} "
    words = len(text.split())
    short = words <= SHORT_WORDS and len(text) <= SHORT_CHARS
    very_short = words <= VERY_SHORT_WORDS and len(text) <= SHORT_CHARS
    unsure = False
    for language, (strong, weak) in _NORMALISED.items():
        unspaced = language in _UNSPACED
        if any(_found(p, padded, unspaced) for p in strong):
            if short:
                return Intent.SURE
            unsure = True
        elif (len(text) <= VERY_SHORT_UNSPACED if unspaced else very_short) and any(_found(w, padded, unspaced) for w in weak):
            unsure = True
    return Intent.UNSURE if unsure else None
