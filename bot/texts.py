"""Everything the bot writes on its own, in the eleven languages it serves.

The model answers people in their language; the bot's own notices (greeting, help, errors) must
too. Each notice is a `Text` key with one string a language, keyed by ISO 639-1 code, written
the way a person would write a friendly chat message in that language.

Some strings take `str.format` fields: `Text.FILE_TOO_LARGE` needs `limit_mb`, `Text.LANG_SET`
needs `language` (the language's own name, from `LANGUAGE_NAMES`), `Text.LANG_UNKNOWN` needs
`codes`, `Text.AUDIO_TOO_LONG` needs `minutes` (ASR_MAX_SECONDS / 60, e.g. "5" or "1.5"). Render `LANG_SET` in the language just chosen, with that language's own name:
``text(Text.LANG_SET, code, language=LANGUAGE_NAMES[code])``; some templates attach the name
to the word for "language" (Thai ``ภาษา{language}``), which reads right only that way.

Strings are plain text (``/lang <code>`` has angle brackets): escape them before sending with an
HTML parse mode.
"""

from __future__ import annotations

import enum
from typing import Any

from bot.languages import resolve_language


class Text(enum.StrEnum):
    """The notices the bot writes itself."""

    GREETING = "greeting"
    HELP = "help"
    RESET_DONE = "reset_done"
    APOLOGY = "apology"
    UNSUPPORTED = "unsupported"
    FILE_TOO_LARGE = "file_too_large"
    IMAGE_UNREADABLE = "image_unreadable"
    RATE_LIMITED = "rate_limited"
    GUARD_REFUSAL = "guard_refusal"
    BUSY = "busy"
    LANG_SET = "lang_set"
    LANG_AUTO = "lang_auto"
    LANG_UNKNOWN = "lang_unknown"
    AUDIO_SILENT = "audio_silent"
    AUDIO_TOO_LONG = "audio_too_long"
    AUDIO_UNREADABLE = "audio_unreadable"


#: The `str.format` fields each text needs; texts not listed take none.
FIELDS: dict[Text, frozenset[str]] = {
    Text.FILE_TOO_LARGE: frozenset({"limit_mb"}),
    Text.LANG_SET: frozenset({"language"}),
    Text.LANG_UNKNOWN: frozenset({"codes"}),
    Text.AUDIO_TOO_LONG: frozenset({"minutes"}),
}

REPLY_INSTRUCTION: dict[str, str] = {
    "en": "Always reply in English, the language the user writes in.",
    "id": "Selalu balas dalam bahasa Indonesia, bahasa yang digunakan pengguna.",
    "ms": "Sentiasa balas dalam bahasa Melayu, bahasa yang digunakan oleh pengguna.",
    "tl": "Laging sumagot sa Filipino, ang wikang ginagamit ng user.",
    "th": "ตอบเป็นภาษาไทยเสมอ เพราะผู้ใช้เขียนมาเป็นภาษาไทย",
    "vi": "Luôn trả lời bằng tiếng Việt, ngôn ngữ mà người dùng đang sử dụng.",
    "ta": "பயனர் எழுதும் மொழியான தமிழிலேயே எப்போதும் பதிலளிக்கவும்.",
    "my": "အသုံးပြုသူ ရေးသားသည့် ဘာသာစကားဖြစ်သော မြန်မာဘာသာဖြင့် အမြဲ ပြန်လည်ဖြေကြားပါ။",
    "km": "ត្រូវឆ្លើយជាភាសាខ្មែរជានិច្ច ព្រោះជាភាសាដែលអ្នកប្រើប្រាស់សរសេរ។",
    "lo": "ໃຫ້ຕອບເປັນພາສາລາວສະເໝີ ເຊິ່ງເປັນພາສາທີ່ຜູ້ໃຊ້ຂຽນ.",
    "zh": "请始终用中文回复，因为这是用户所使用的语言。",
}
"""One sentence for the system prompt, in the target language itself: always answer in it."""

_TEXTS: dict[str, dict[Text, str]] = {
    "en": {
        Text.GREETING: (
            "Hi! I'm SEA-LION, an AI assistant from AI Singapore. Send me a message or a photo "
            "and I'll answer in your language."
        ),
        Text.HELP: (
            "I'm SEA-LION, an AI assistant from AI Singapore. Ask me anything, or send a photo "
            "and ask about it — I'll answer in your language.\n\n"
            "Commands:\n"
            "/reset – start a new conversation\n"
            "/lang <code> – choose the reply language (for example /lang th)\n"
            "/lang auto – reply in whatever language you write in\n"
            "/help – show this message"
        ),
        Text.RESET_DONE: "Done! I've cleared our conversation. Let's start fresh.",
        Text.APOLOGY: (
            "Sorry, something went wrong while I was writing my answer. Please try again."
        ),
        Text.UNSUPPORTED: (
            "Sorry, I can only read text and photos for now — not stickers, voice messages, "
            "videos, files or locations."
        ),
        Text.FILE_TOO_LARGE: (
            "Sorry, that file is too big for me to read. The limit is {limit_mb} MB."
        ),
        Text.IMAGE_UNREADABLE: (
            "Sorry, I couldn't read this image. Could you send it again as a regular photo?"
        ),
        Text.RATE_LIMITED: (
            "You're sending messages a bit too fast. Please wait a moment and try again."
        ),
        Text.GUARD_REFUSAL: "Sorry, I can't help with that. Let's talk about something else.",
        Text.BUSY: "Many people are writing to me right now. I'll answer you soon.",
        Text.LANG_SET: "OK! From now on I'll reply in {language}.",
        Text.LANG_AUTO: "OK! I'll reply in whatever language you write in.",
        Text.LANG_UNKNOWN: (
            "Sorry, I don't know that language code. You can choose from: {codes}. Or use /lang "
            "auto."
        ),
        Text.AUDIO_SILENT: (
            "Sorry, I couldn't hear anything in that voice message. Could you record it again?"
        ),
        Text.AUDIO_TOO_LONG: (
            'Sorry, that voice message is too long for me. Please keep it under {minutes} minutes.'
        ),
        Text.AUDIO_UNREADABLE: "Sorry, I couldn't play that audio. Could you send it again?",
    },
    "id": {
        Text.GREETING: (
            "Halo! Saya SEA-LION, asisten AI dari AI Singapore. Kirim pesan atau foto, nanti saya "
            "jawab dalam bahasamu."
        ),
        Text.HELP: (
            "Saya SEA-LION, asisten AI dari AI Singapore. Tanyakan apa saja, atau kirim foto lalu "
            "tanyakan tentang foto itu — saya akan menjawab dalam bahasamu.\n\n"
            "Perintah:\n"
            "/reset – mulai percakapan baru\n"
            "/lang <kode> – pilih bahasa balasan (misalnya /lang id)\n"
            "/lang auto – balas dalam bahasa yang kamu pakai\n"
            "/help – tampilkan pesan ini"
        ),
        Text.RESET_DONE: "Beres! Percakapan kita sudah dihapus. Yuk, mulai dari awal.",
        Text.APOLOGY: "Maaf, ada yang salah saat saya menyusun jawaban. Coba lagi, ya.",
        Text.UNSUPPORTED: (
            "Maaf, untuk sekarang saya hanya bisa membaca teks dan foto — belum bisa stiker, "
            "pesan suara, video, file, atau lokasi."
        ),
        Text.FILE_TOO_LARGE: (
            "Maaf, file itu terlalu besar untuk saya baca. Batasnya {limit_mb} MB."
        ),
        Text.IMAGE_UNREADABLE: (
            "Maaf, saya tidak bisa membaca gambar ini. Coba kirim ulang sebagai foto biasa, ya."
        ),
        Text.RATE_LIMITED: "Pesanmu datang terlalu cepat. Tunggu sebentar, lalu coba lagi ya.",
        Text.GUARD_REFUSAL: 'Maaf, saya tidak bisa membantu soal itu. Yuk, bicarakan hal lain.',
        Text.BUSY: (
            'Banyak orang sedang menulis kepada saya sekarang. Saya akan segera menjawabmu.'
        ),
        Text.LANG_SET: "Oke! Mulai sekarang saya akan membalas dalam {language}.",
        Text.LANG_AUTO: "Oke! Saya akan membalas dalam bahasa yang kamu pakai.",
        Text.LANG_UNKNOWN: (
            "Maaf, saya tidak mengenal kode bahasa itu. Pilih salah satu: {codes}. Atau pakai "
            "/lang auto."
        ),
        Text.AUDIO_SILENT: (
            'Maaf, saya tidak mendengar apa-apa di pesan suara itu. Coba rekam ulang, ya.'
        ),
        Text.AUDIO_TOO_LONG: (
            'Maaf, pesan suara itu terlalu panjang untuk saya. Kirim yang kurang dari {minutes} menit, ya.'
        ),
        Text.AUDIO_UNREADABLE: 'Maaf, saya tidak bisa memutar audio itu. Coba kirim lagi, ya.',
    },
    "ms": {
        Text.GREETING: (
            "Hai! Saya SEA-LION, pembantu AI daripada AI Singapore. Hantarlah mesej atau gambar, "
            "dan saya akan balas dalam bahasa anda."
        ),
        Text.HELP: (
            "Saya SEA-LION, pembantu AI daripada AI Singapore. Tanyalah apa sahaja, atau hantar "
            "gambar dan tanya tentangnya — saya akan jawab dalam bahasa anda.\n\n"
            "Arahan:\n"
            "/reset – mulakan perbualan baharu\n"
            "/lang <kod> – pilih bahasa balasan (contohnya /lang ms)\n"
            "/lang auto – balas dalam bahasa yang anda gunakan\n"
            "/help – papar mesej ini"
        ),
        Text.RESET_DONE: "Siap! Perbualan kita sudah dipadam. Jom mula semula.",
        Text.APOLOGY: "Maaf, ada masalah semasa saya menyediakan jawapan. Sila cuba lagi.",
        Text.UNSUPPORTED: (
            "Maaf, buat masa ini saya hanya boleh membaca teks dan gambar — belum boleh pelekat, "
            "mesej suara, video, fail atau lokasi."
        ),
        Text.FILE_TOO_LARGE: (
            "Maaf, fail itu terlalu besar untuk saya baca. Had maksimumnya {limit_mb} MB."
        ),
        Text.IMAGE_UNREADABLE: (
            "Maaf, saya tidak dapat membaca imej ini. Sila hantar semula sebagai gambar biasa."
        ),
        Text.RATE_LIMITED: (
            "Anda menghantar mesej terlalu cepat. Sila tunggu sebentar dan cuba lagi."
        ),
        Text.GUARD_REFUSAL: (
            'Maaf, saya tidak dapat membantu dalam hal itu. Jom bincang tentang perkara lain.'
        ),
        Text.BUSY: (
            'Ramai orang sedang menghantar mesej kepada saya sekarang. Saya akan balas anda sebentar lagi.'
        ),
        Text.LANG_SET: "Baik! Mulai sekarang saya akan balas dalam {language}.",
        Text.LANG_AUTO: "Baik! Saya akan balas dalam bahasa yang anda gunakan.",
        Text.LANG_UNKNOWN: (
            "Maaf, saya tidak kenal kod bahasa itu. Pilih salah satu: {codes}. Atau gunakan /lang "
            "auto."
        ),
        Text.AUDIO_SILENT: (
            'Maaf, saya tidak dengar apa-apa dalam mesej suara itu. Boleh cuba rakam semula?'
        ),
        Text.AUDIO_TOO_LONG: (
            'Maaf, mesej suara itu terlalu panjang untuk saya. Sila hantar yang kurang daripada {minutes} minit.'
        ),
        Text.AUDIO_UNREADABLE: (
            'Maaf, saya tidak dapat memainkan audio itu. Boleh cuba hantar sekali lagi?'
        ),
    },
    "tl": {
        Text.GREETING: (
            "Hi! Ako si SEA-LION, isang AI assistant mula sa AI Singapore. Magpadala ka ng "
            "mensahe o litrato, at sasagot ako sa sarili mong wika."
        ),
        Text.HELP: (
            "Ako si SEA-LION, isang AI assistant mula sa AI Singapore. Magtanong ka ng kahit ano, "
            "o magpadala ng litrato at magtanong tungkol dito — sasagot ako sa wika mo.\n\n"
            "Mga command:\n"
            "/reset – magsimula ng bagong usapan\n"
            "/lang <code> – piliin ang wika ng sagot (halimbawa: /lang tl)\n"
            "/lang auto – sasagot ako sa wikang ginagamit mo\n"
            "/help – ipakita ang mensaheng ito"
        ),
        Text.RESET_DONE: "Ayan, na-clear na ang usapan natin. Simulan natin ulit!",
        Text.APOLOGY: "Pasensya na, nagkaproblema habang ginagawa ko ang sagot. Pakisubukan ulit.",
        Text.UNSUPPORTED: (
            "Pasensya na, text at litrato lang ang kaya kong basahin sa ngayon — hindi pa ang mga "
            "sticker, voice message, video, file o location."
        ),
        Text.FILE_TOO_LARGE: (
            "Pasensya na, masyadong malaki ang file na 'yan para mabasa ko. Hanggang {limit_mb} "
            "MB lang."
        ),
        Text.IMAGE_UNREADABLE: (
            "Pasensya na, hindi ko mabasa ang larawang ito. Pakipadala ulit bilang karaniwang "
            "litrato."
        ),
        Text.RATE_LIMITED: (
            "Medyo mabilis ang pagpapadala mo ng mensahe. Maghintay ka muna sandali, tapos "
            "subukan ulit."
        ),
        Text.GUARD_REFUSAL: (
            'Pasensya na, hindi ako makakatulong diyan. Pag-usapan na lang natin ang ibang bagay.'
        ),
        Text.BUSY: (
            'Maraming tao ang nagme-message sa akin ngayon. Sasagutin kita sa lalong madaling panahon.'
        ),
        Text.LANG_SET: "Sige! Simula ngayon, sasagot ako sa {language}.",
        Text.LANG_AUTO: "Sige! Sasagot ako sa wikang ginagamit mo.",
        Text.LANG_UNKNOWN: (
            "Pasensya na, hindi ko kilala ang language code na 'yan. Pumili sa mga ito: {codes}. "
            "O gamitin ang /lang auto."
        ),
        Text.AUDIO_SILENT: (
            'Pasensya na, wala akong narinig sa voice message na iyon. Pakisubukang i-record ulit.'
        ),
        Text.AUDIO_TOO_LONG: (
            'Pasensya na, masyadong mahaba para sa akin ang voice message na iyon. Pakipadala ng mas maikli sa {minutes} minuto.'
        ),
        Text.AUDIO_UNREADABLE: 'Pasensya na, hindi ko ma-play ang audio na iyon. Pakipadala ulit.',
    },
    "th": {
        Text.GREETING: (
            "สวัสดี! ฉันคือ SEA-LION ผู้ช่วย AI จาก AI Singapore ส่งข้อความหรือรูปภาพมาได้เลย "
            "แล้วฉันจะตอบเป็นภาษาของคุณ"
        ),
        Text.HELP: (
            "ฉันคือ SEA-LION ผู้ช่วย AI จาก AI Singapore ถามอะไรก็ได้ หรือจะส่งรูปมาแล้วถามเกี่ยวกับรูปนั้นก็ได้ "
            "ฉันจะตอบเป็นภาษาของคุณ\n\n"
            "คำสั่ง:\n"
            "/reset – เริ่มบทสนทนาใหม่\n"
            "/lang <รหัสภาษา> – เลือกภาษาที่จะให้ตอบ (เช่น /lang th)\n"
            "/lang auto – ตอบเป็นภาษาเดียวกับที่คุณพิมพ์มา\n"
            "/help – แสดงข้อความนี้"
        ),
        Text.RESET_DONE: "เรียบร้อย! ล้างบทสนทนาแล้ว มาเริ่มกันใหม่ได้เลย",
        Text.APOLOGY: "ขออภัย เกิดข้อผิดพลาดระหว่างสร้างคำตอบ ลองใหม่อีกครั้งนะ",
        Text.UNSUPPORTED: (
            "ขออภัย ตอนนี้ฉันอ่านได้แค่ข้อความและรูปภาพเท่านั้น ยังอ่านสติกเกอร์ ข้อความเสียง วิดีโอ ไฟล์ "
            "หรือตำแหน่งที่ตั้งไม่ได้"
        ),
        Text.FILE_TOO_LARGE: "ขออภัย ไฟล์นี้ใหญ่เกินกว่าที่ฉันจะอ่านได้ ขนาดสูงสุดคือ {limit_mb} MB",
        Text.IMAGE_UNREADABLE: "ขออภัย ฉันอ่านรูปภาพนี้ไม่ได้ ลองส่งมาใหม่เป็นรูปภาพธรรมดานะ",
        Text.RATE_LIMITED: "ส่งข้อความเร็วไปหน่อยนะ รอสักครู่แล้วค่อยลองใหม่",
        Text.GUARD_REFUSAL: 'ขออภัย เรื่องนี้ฉันช่วยไม่ได้ ลองคุยเรื่องอื่นกันนะ',
        Text.BUSY: 'ตอนนี้มีคนส่งข้อความมาหาฉันเยอะมาก เดี๋ยวฉันจะรีบตอบนะ',
        Text.LANG_SET: "ได้เลย! ต่อจากนี้ฉันจะตอบเป็นภาษา{language}",
        Text.LANG_AUTO: "ได้เลย! ฉันจะตอบเป็นภาษาเดียวกับที่คุณพิมพ์มา",
        Text.LANG_UNKNOWN: "ขออภัย ไม่รู้จักรหัสภาษานี้ เลือกได้จาก: {codes} หรือใช้ /lang auto",
        Text.AUDIO_SILENT: (
            'ขออภัย ฉันไม่ได้ยินเสียงอะไรในข้อความเสียงนั้นเลย ลองอัดใหม่อีกครั้งนะ'
        ),
        Text.AUDIO_TOO_LONG: (
            'ขออภัย ข้อความเสียงนั้นยาวเกินไปสำหรับฉัน ช่วยส่งที่ยาวไม่เกิน {minutes} นาทีนะ'
        ),
        Text.AUDIO_UNREADABLE: 'ขออภัย ฉันเปิดไฟล์เสียงนั้นไม่ได้ ลองส่งมาใหม่อีกครั้งนะ',
    },
    "vi": {
        Text.GREETING: (
            "Xin chào! Mình là SEA-LION, trợ lý AI của AI Singapore. Bạn cứ gửi tin nhắn hoặc "
            "ảnh, mình sẽ trả lời bằng ngôn ngữ của bạn nhé."
        ),
        Text.HELP: (
            "Mình là SEA-LION, trợ lý AI của AI Singapore. Bạn có thể hỏi mình bất cứ điều gì, "
            "hoặc gửi ảnh rồi hỏi về bức ảnh đó — mình sẽ trả lời bằng ngôn ngữ của bạn.\n\n"
            "Các lệnh:\n"
            "/reset – bắt đầu cuộc trò chuyện mới\n"
            "/lang <mã> – chọn ngôn ngữ trả lời (ví dụ: /lang vi)\n"
            "/lang auto – trả lời bằng ngôn ngữ bạn đang dùng\n"
            "/help – xem lại hướng dẫn này"
        ),
        Text.RESET_DONE: "Xong rồi! Mình đã xoá cuộc trò chuyện. Mình bắt đầu lại nhé.",
        Text.APOLOGY: (
            "Xin lỗi, đã có lỗi xảy ra khi mình soạn câu trả lời. Bạn thử lại giúp mình nhé."
        ),
        Text.UNSUPPORTED: (
            "Xin lỗi, hiện tại mình chỉ đọc được tin nhắn văn bản và ảnh thôi — chưa đọc được "
            "sticker, tin nhắn thoại, video, tệp hay vị trí."
        ),
        Text.FILE_TOO_LARGE: (
            "Xin lỗi, tệp này quá lớn nên mình không đọc được. Dung lượng tối đa là {limit_mb} MB."
        ),
        Text.IMAGE_UNREADABLE: (
            "Xin lỗi, mình không đọc được hình ảnh này. Bạn thử gửi lại dưới dạng ảnh thông "
            "thường nhé."
        ),
        Text.RATE_LIMITED: "Bạn gửi tin nhắn hơi nhanh đấy. Đợi một chút rồi thử lại nhé.",
        Text.GUARD_REFUSAL: (
            'Xin lỗi, mình không thể giúp về chuyện này. Mình nói chuyện khác nhé.'
        ),
        Text.BUSY: 'Hiện có rất nhiều người đang nhắn tin cho mình. Mình sẽ trả lời bạn sớm thôi.',
        Text.LANG_SET: "OK! Từ giờ mình sẽ trả lời bằng {language}.",
        Text.LANG_AUTO: "OK! Mình sẽ trả lời bằng ngôn ngữ bạn dùng để nhắn.",
        Text.LANG_UNKNOWN: (
            "Xin lỗi, mình không nhận ra mã ngôn ngữ này. Bạn có thể chọn: {codes}. Hoặc dùng "
            "/lang auto."
        ),
        Text.AUDIO_SILENT: (
            'Xin lỗi, mình không nghe thấy gì trong tin nhắn thoại đó. Bạn thử ghi âm lại giúp mình nhé.'
        ),
        Text.AUDIO_TOO_LONG: (
            'Xin lỗi, tin nhắn thoại đó dài quá với mình. Bạn gửi đoạn ngắn hơn {minutes} phút giúp mình nhé.'
        ),
        Text.AUDIO_UNREADABLE: (
            'Xin lỗi, mình không mở được đoạn âm thanh đó. Bạn gửi lại giúp mình nhé.'
        ),
    },
    "ta": {
        Text.GREETING: (
            "வணக்கம்! நான் SEA-LION, AI Singapore-இன் AI உதவியாளர். எனக்கு ஒரு செய்தியோ புகைப்படமோ "
            "அனுப்புங்கள், உங்கள் மொழியிலேயே பதில் சொல்கிறேன்."
        ),
        Text.HELP: (
            "நான் SEA-LION, AI Singapore-இன் AI உதவியாளர். எதை வேண்டுமானாலும் கேளுங்கள், அல்லது ஒரு "
            "புகைப்படம் அனுப்பி அதைப் பற்றிக் கேளுங்கள் — உங்கள் மொழியிலேயே பதில் சொல்வேன்.\n\n"
            "கட்டளைகள்:\n"
            "/reset – புதிய உரையாடலைத் தொடங்க\n"
            "/lang <குறியீடு> – பதில் மொழியைத் தேர்வு செய்ய (எ.கா. /lang ta)\n"
            "/lang auto – நீங்கள் எழுதும் மொழியிலேயே பதில் பெற\n"
            "/help – இந்தச் செய்தியைக் காட்ட"
        ),
        Text.RESET_DONE: "முடிந்தது! நம் உரையாடலை அழித்துவிட்டேன். புதிதாகத் தொடங்கலாம்.",
        Text.APOLOGY: (
            "மன்னிக்கவும், பதிலைத் தயாரிக்கும்போது ஏதோ தவறு நடந்துவிட்டது. மீண்டும் முயற்சி செய்யுங்கள்."
        ),
        Text.UNSUPPORTED: (
            "மன்னிக்கவும், இப்போதைக்கு என்னால் உரையையும் புகைப்படங்களையும் மட்டுமே படிக்க முடியும் — ஸ்டிக்கர், "
            "குரல் செய்தி, வீடியோ, கோப்பு, இருப்பிடம் போன்றவற்றை இன்னும் படிக்க முடியாது."
        ),
        Text.FILE_TOO_LARGE: (
            "மன்னிக்கவும், இந்தக் கோப்பு மிகப் பெரியதாக இருப்பதால் என்னால் படிக்க முடியவில்லை. அதிகபட்ச அளவு "
            "{limit_mb} MB."
        ),
        Text.IMAGE_UNREADABLE: (
            "மன்னிக்கவும், இந்தப் படத்தை என்னால் படிக்க முடியவில்லை. இதைச் சாதாரணப் புகைப்படமாக "
            "மீண்டும் அனுப்பிப் பாருங்கள்."
        ),
        Text.RATE_LIMITED: (
            "நீங்கள் மிக வேகமாகச் செய்திகளை அனுப்புகிறீர்கள். சற்று நேரம் காத்திருந்து மீண்டும் முயற்சி செய்யுங்கள்."
        ),
        Text.GUARD_REFUSAL: (
            'மன்னிக்கவும், இதில் என்னால் உதவ முடியாது. வேறு ஏதாவது பற்றிப் பேசலாம்.'
        ),
        Text.BUSY: (
            'இப்போது நிறைய பேர் எனக்கு எழுதுகிறார்கள். விரைவில் உங்களுக்குப் பதில் சொல்கிறேன்.'
        ),
        Text.LANG_SET: "சரி! இனி {language} மொழியில் பதில் சொல்வேன்.",
        Text.LANG_AUTO: "சரி! நீங்கள் எழுதும் மொழியிலேயே பதில் சொல்வேன்.",
        Text.LANG_UNKNOWN: (
            "மன்னிக்கவும், அந்த மொழிக் குறியீடு எனக்குத் தெரியவில்லை. இவற்றில் ஒன்றைத் தேர்வு செய்யுங்கள்: "
            "{codes}. அல்லது /lang auto பயன்படுத்துங்கள்."
        ),
        Text.AUDIO_SILENT: (
            'மன்னிக்கவும், அந்தக் குரல் செய்தியில் எனக்கு எதுவும் கேட்கவில்லை. மீண்டும் பதிவு செய்து அனுப்புங்கள்.'
        ),
        Text.AUDIO_TOO_LONG: (
            'மன்னிக்கவும், அந்தக் குரல் செய்தி எனக்கு மிக நீளமாக உள்ளது. {minutes} நிமிடங்களுக்குள் அனுப்புங்கள்.'
        ),
        Text.AUDIO_UNREADABLE: (
            'மன்னிக்கவும், அந்த ஆடியோவை என்னால் இயக்க முடியவில்லை. மீண்டும் அனுப்புங்கள்.'
        ),
    },
    "my": {
        Text.GREETING: (
            "မင်္ဂလာပါ! SEA-LION ပါ။ AI Singapore က AI လက်ထောက်တစ်ယောက်ပါ။ စာ ဒါမှမဟုတ် ဓာတ်ပုံ ပို့လိုက်ပါ၊ "
            "သင့်ဘာသာစကားနဲ့ ပြန်ဖြေပေးပါမယ်။"
        ),
        Text.HELP: (
            "SEA-LION ပါ။ AI Singapore က AI လက်ထောက်တစ်ယောက်ပါ။ ဘာမဆို မေးနိုင်ပါတယ်၊ ဓာတ်ပုံပို့ပြီး "
            "အဲဒီဓာတ်ပုံအကြောင်းလည်း မေးနိုင်ပါတယ်။ သင့်ဘာသာစကားနဲ့ ပြန်ဖြေပေးပါမယ်။\n\n"
            "အမိန့်များ:\n"
            "/reset – စကားဝိုင်းအသစ် စတင်ရန်\n"
            "/lang <ကုဒ်> – ပြန်ဖြေမယ့် ဘာသာစကား ရွေးရန် (ဥပမာ /lang my)\n"
            "/lang auto – သင်ရေးတဲ့ ဘာသာစကားနဲ့ပဲ ပြန်ဖြေရန်\n"
            "/help – ဒီစာကို ပြရန်"
        ),
        Text.RESET_DONE: "ပြီးပါပြီ! စကားဝိုင်းကို ရှင်းလင်းလိုက်ပါပြီ။ အသစ်ကနေ ပြန်စကြရအောင်။",
        Text.APOLOGY: "တောင်းပန်ပါတယ်၊ အဖြေရေးနေစဉ် တစ်ခုခု မှားယွင်းသွားပါတယ်။ နောက်တစ်ကြိမ် ထပ်စမ်းကြည့်ပေးပါ။",
        Text.UNSUPPORTED: (
            "တောင်းပန်ပါတယ်၊ လောလောဆယ် စာနဲ့ ဓာတ်ပုံကိုပဲ ဖတ်နိုင်သေးပါတယ်။ စတစ်ကာ၊ အသံမက်ဆေ့ချ်၊ ဗီဒီယို၊ ဖိုင် နဲ့ တည်နေရာတွေကို "
            "မဖတ်နိုင်သေးပါဘူး။"
        ),
        Text.FILE_TOO_LARGE: (
            "တောင်းပန်ပါတယ်၊ ဒီဖိုင်က ဖတ်ဖို့ အရမ်းကြီးနေပါတယ်။ အများဆုံး {limit_mb} MB အထိပဲ ရပါတယ်။"
        ),
        Text.IMAGE_UNREADABLE: "တောင်းပန်ပါတယ်၊ ဒီပုံကို ဖတ်လို့မရပါဘူး။ ပုံမှန်ဓာတ်ပုံအဖြစ် ထပ်ပို့ကြည့်ပေးပါ။",
        Text.RATE_LIMITED: "မက်ဆေ့ချ်တွေ နည်းနည်း မြန်လွန်းနေပါတယ်။ ခဏစောင့်ပြီးမှ ထပ်ပို့ပေးပါ။",
        Text.GUARD_REFUSAL: (
            'တောင်းပန်ပါတယ်၊ ဒီကိစ္စမှာ ကူညီပေးလို့ မရပါဘူး။ တခြားအကြောင်း ပြောကြရအောင်။'
        ),
        Text.BUSY: 'အခု လူအများကြီး စာပို့နေကြပါတယ်။ မကြာခင် ပြန်ဖြေပေးပါမယ်။',
        Text.LANG_SET: "ကောင်းပါပြီ! အခုကစပြီး {language} ဘာသာနဲ့ ပြန်ဖြေပေးပါမယ်။",
        Text.LANG_AUTO: "ကောင်းပါပြီ! သင်ရေးတဲ့ ဘာသာစကားနဲ့ပဲ ပြန်ဖြေပေးပါမယ်။",
        Text.LANG_UNKNOWN: (
            "တောင်းပန်ပါတယ်၊ အဲဒီ ဘာသာစကားကုဒ်ကို မသိပါဘူး။ ဒီထဲက ရွေးပေးပါ: {codes}။ ဒါမှမဟုတ် /lang auto ကို သုံးပါ။"
        ),
        Text.AUDIO_SILENT: (
            'တောင်းပန်ပါတယ်၊ အဲဒီအသံမက်ဆေ့ချ်ထဲမှာ ဘာမှ မကြားရပါဘူး။ နောက်တစ်ကြိမ် ပြန်အသံသွင်းပေးပါ။'
        ),
        Text.AUDIO_TOO_LONG: (
            'တောင်းပန်ပါတယ်၊ အဲဒီအသံမက်ဆေ့ချ်က ရှည်လွန်းနေပါတယ်။ {minutes} မိနစ်အောက် ပို့ပေးပါ။'
        ),
        Text.AUDIO_UNREADABLE: (
            'တောင်းပန်ပါတယ်၊ အဲဒီအသံဖိုင်ကို ဖွင့်လို့ မရပါဘူး။ နောက်တစ်ကြိမ် ထပ်ပို့ပေးပါ။'
        ),
    },
    "km": {
        Text.GREETING: (
            "សួស្ដី! ខ្ញុំគឺ SEA-LION ជាជំនួយការ AI មកពី AI Singapore។ ផ្ញើសារ ឬរូបថតមកខ្ញុំបានទាំងអស់ "
            "ខ្ញុំនឹងឆ្លើយជាភាសារបស់អ្នក។"
        ),
        Text.HELP: (
            "ខ្ញុំគឺ SEA-LION ជាជំនួយការ AI មកពី AI Singapore។ សួរអ្វីក៏បាន ឬផ្ញើរូបថតមក ហើយសួរអំពីរូបនោះ — "
            "ខ្ញុំនឹងឆ្លើយជាភាសារបស់អ្នក។\n\n"
            "ពាក្យបញ្ជា៖\n"
            "/reset – ចាប់ផ្ដើមការសន្ទនាថ្មី\n"
            "/lang <កូដ> – ជ្រើសរើសភាសាសម្រាប់ឆ្លើយ (ឧទាហរណ៍ /lang km)\n"
            "/lang auto – ឆ្លើយជាភាសាដែលអ្នកសរសេរ\n"
            "/help – បង្ហាញសារនេះ"
        ),
        Text.RESET_DONE: "រួចរាល់! ខ្ញុំបានលុបការសន្ទនារបស់យើងហើយ។ តោះចាប់ផ្ដើមសាជាថ្មី។",
        Text.APOLOGY: "សូមអភ័យទោស មានបញ្ហាកើតឡើងពេលខ្ញុំកំពុងរៀបចំចម្លើយ។ សូមសាកល្បងម្ដងទៀត។",
        Text.UNSUPPORTED: (
            "សូមអភ័យទោស ពេលនេះខ្ញុំអាចអានបានតែអក្សរ និងរូបថតប៉ុណ្ណោះ — មិនទាន់អាចអានស្ទីកគ័រ សារជាសំឡេង វីដេអូ ឯកសារ "
            "ឬទីតាំងបានទេ។"
        ),
        Text.FILE_TOO_LARGE: "សូមអភ័យទោស ឯកសារនេះធំពេក ខ្ញុំមិនអាចអានបានទេ។ ទំហំអតិបរមាគឺ {limit_mb} MB។",
        Text.IMAGE_UNREADABLE: "សូមអភ័យទោស ខ្ញុំមិនអាចអានរូបភាពនេះបានទេ។ សូមផ្ញើវាម្ដងទៀតជារូបថតធម្មតា។",
        Text.RATE_LIMITED: "អ្នកផ្ញើសារលឿនពេកបន្តិចហើយ។ សូមរង់ចាំមួយភ្លែត រួចសាកល្បងម្ដងទៀត។",
        Text.GUARD_REFUSAL: 'សូមអភ័យទោស ខ្ញុំមិនអាចជួយរឿងនេះបានទេ។ តោះនិយាយអំពីរឿងផ្សេងវិញ។',
        Text.BUSY: 'ឥឡូវនេះមានមនុស្សច្រើនកំពុងផ្ញើសារមកខ្ញុំ។ ខ្ញុំនឹងឆ្លើយអ្នកឆាប់ៗនេះ។',
        Text.LANG_SET: "បានហើយ! ចាប់ពីពេលនេះទៅ ខ្ញុំនឹងឆ្លើយជាភាសា{language}។",
        Text.LANG_AUTO: "បានហើយ! ខ្ញុំនឹងឆ្លើយជាភាសាដែលអ្នកសរសេរមក។",
        Text.LANG_UNKNOWN: "សូមអភ័យទោស ខ្ញុំមិនស្គាល់កូដភាសានេះទេ។ សូមជ្រើសរើសពី៖ {codes}។ ឬប្រើ /lang auto។",
        Text.AUDIO_SILENT: 'សូមអភ័យទោស ខ្ញុំមិនបានឮអ្វីសោះនៅក្នុងសារជាសំឡេងនោះទេ។ សូមថតម្ដងទៀត។',
        Text.AUDIO_TOO_LONG: (
            'សូមអភ័យទោស សារជាសំឡេងនោះវែងពេកសម្រាប់ខ្ញុំ។ សូមផ្ញើសារដែលខ្លីជាង {minutes} នាទី។'
        ),
        Text.AUDIO_UNREADABLE: 'សូមអភ័យទោស ខ្ញុំមិនអាចចាក់សំឡេងនោះបានទេ។ សូមផ្ញើម្ដងទៀត។',
    },
    "lo": {
        Text.GREETING: (
            "ສະບາຍດີ! ຂ້ອຍແມ່ນ SEA-LION, ຜູ້ຊ່ວຍ AI ຈາກ AI Singapore. ສົ່ງຂໍ້ຄວາມ ຫຼື ຮູບພາບມາໄດ້ເລີຍ "
            "ແລ້ວຂ້ອຍຈະຕອບເປັນພາສາຂອງເຈົ້າ."
        ),
        Text.HELP: (
            "ຂ້ອຍແມ່ນ SEA-LION, ຜູ້ຊ່ວຍ AI ຈາກ AI Singapore. ຖາມຫຍັງກໍໄດ້ ຫຼື ສົ່ງຮູບມາແລ້ວຖາມກ່ຽວກັບຮູບນັ້ນກໍໄດ້ — "
            "ຂ້ອຍຈະຕອບເປັນພາສາຂອງເຈົ້າ.\n\n"
            "ຄຳສັ່ງ:\n"
            "/reset – ເລີ່ມການສົນທະນາໃໝ່\n"
            "/lang <ລະຫັດ> – ເລືອກພາສາທີ່ຈະໃຫ້ຕອບ (ຕົວຢ່າງ /lang lo)\n"
            "/lang auto – ຕອບເປັນພາສາດຽວກັບທີ່ເຈົ້າພິມມາ\n"
            "/help – ສະແດງຂໍ້ຄວາມນີ້"
        ),
        Text.RESET_DONE: "ຮຽບຮ້ອຍແລ້ວ! ລຶບການສົນທະນາແລ້ວ ມາເລີ່ມໃໝ່ກັນເລີຍ.",
        Text.APOLOGY: "ຂໍອະໄພ, ມີບັນຫາເກີດຂຶ້ນໃນຂະນະທີ່ສ້າງຄຳຕອບ. ກະລຸນາລອງໃໝ່ອີກຄັ້ງ.",
        Text.UNSUPPORTED: (
            "ຂໍອະໄພ, ຕອນນີ້ຂ້ອຍອ່ານໄດ້ແຕ່ຂໍ້ຄວາມ ແລະ ຮູບພາບເທົ່ານັ້ນ — ຍັງອ່ານສະຕິກເກີ, ຂໍ້ຄວາມສຽງ, ວິດີໂອ, ໄຟລ໌ ຫຼື "
            "ສະຖານທີ່ບໍ່ໄດ້."
        ),
        Text.FILE_TOO_LARGE: "ຂໍອະໄພ, ໄຟລ໌ນີ້ໃຫຍ່ເກີນໄປ ຂ້ອຍອ່ານບໍ່ໄດ້. ຂະໜາດສູງສຸດແມ່ນ {limit_mb} MB.",
        Text.IMAGE_UNREADABLE: "ຂໍອະໄພ, ຂ້ອຍອ່ານຮູບນີ້ບໍ່ໄດ້. ກະລຸນາສົ່ງມາໃໝ່ເປັນຮູບພາບທຳມະດາ.",
        Text.RATE_LIMITED: "ເຈົ້າສົ່ງຂໍ້ຄວາມໄວໂພດ. ກະລຸນາລໍຖ້າຈັກໜ້ອຍ ແລ້ວລອງໃໝ່.",
        Text.GUARD_REFUSAL: 'ຂໍອະໄພ, ເລື່ອງນີ້ຂ້ອຍຊ່ວຍບໍ່ໄດ້. ມາລົມກັນເລື່ອງອື່ນເທາະ.',
        Text.BUSY: 'ຕອນນີ້ມີຫຼາຍຄົນກຳລັງສົ່ງຂໍ້ຄວາມຫາຂ້ອຍ. ຂ້ອຍຈະຕອບເຈົ້າໄວໆນີ້.',
        Text.LANG_SET: "ໄດ້ເລີຍ! ຕໍ່ຈາກນີ້ຂ້ອຍຈະຕອບເປັນພາສາ{language}.",
        Text.LANG_AUTO: "ໄດ້ເລີຍ! ຂ້ອຍຈະຕອບເປັນພາສາດຽວກັບທີ່ເຈົ້າພິມມາ.",
        Text.LANG_UNKNOWN: "ຂໍອະໄພ, ຂ້ອຍບໍ່ຮູ້ຈັກລະຫັດພາສານີ້. ເລືອກໄດ້ຈາກ: {codes} ຫຼື ໃຊ້ /lang auto.",
        Text.AUDIO_SILENT: 'ຂໍອະໄພ, ຂ້ອຍບໍ່ໄດ້ຍິນຫຍັງເລີຍໃນຂໍ້ຄວາມສຽງນັ້ນ. ກະລຸນາອັດໃໝ່ອີກຄັ້ງ.',
        Text.AUDIO_TOO_LONG: (
            'ຂໍອະໄພ, ຂໍ້ຄວາມສຽງນັ້ນຍາວເກີນໄປສຳລັບຂ້ອຍ. ກະລຸນາສົ່ງທີ່ສັ້ນກວ່າ {minutes} ນາທີ.'
        ),
        Text.AUDIO_UNREADABLE: 'ຂໍອະໄພ, ຂ້ອຍເປີດສຽງນັ້ນບໍ່ໄດ້. ກະລຸນາສົ່ງມາໃໝ່ອີກຄັ້ງ.',
    },
    "zh": {
        Text.GREETING: (
            "你好！我是 SEA-LION，来自 AI Singapore 的 AI "
            "助手。给我发文字或图片，我会用你的语言回复你。"
        ),
        Text.HELP: (
            "我是 SEA-LION，来自 AI Singapore 的 AI "
            "助手。你可以问我任何问题，也可以发一张图片，问我和它有关的问题——我会用你的语言回答。"
            "\n\n"
            "指令：\n"
            "/reset – 开始新的对话\n"
            "/lang <代码> – 选择回复语言（例如 /lang zh）\n"
            "/lang auto – 用你所写的语言回复\n"
            "/help – 显示这条消息"
        ),
        Text.RESET_DONE: "好了！对话已清空，我们重新开始吧。",
        Text.APOLOGY: "抱歉，生成回答时出了点问题，请再试一次。",
        Text.UNSUPPORTED: (
            "抱歉，我目前只能读取文字和图片，暂时还看不了贴纸、语音、视频、文件或位置。"
        ),
        Text.FILE_TOO_LARGE: "抱歉，这个文件太大了，我读不了。文件最大只能 {limit_mb} MB。",
        Text.IMAGE_UNREADABLE: "抱歉，我读不了这张图片。请以普通照片的形式重新发送。",
        Text.RATE_LIMITED: "你发消息有点太快了，请稍等一下再试。",
        Text.GUARD_REFUSAL: '抱歉，这个问题我帮不了你。我们聊点别的吧。',
        Text.BUSY: '现在给我发消息的人很多，我会尽快回复你。',
        Text.LANG_SET: "好的！从现在起我会用{language}回复你。",
        Text.LANG_AUTO: "好的！你用什么语言写，我就用什么语言回复。",
        Text.LANG_UNKNOWN: "抱歉，我不认识这个语言代码。可以选择：{codes}。或者使用 /lang auto。",
        Text.AUDIO_SILENT: '抱歉，我在这条语音消息里什么也没听到。可以再录一次吗？',
        Text.AUDIO_TOO_LONG: '抱歉，这条语音消息太长了，我处理不了。请发送 {minutes} 分钟以内的语音。',
        Text.AUDIO_UNREADABLE: '抱歉，我无法播放这段音频。可以再发一次吗？',
    },
}


def text(key: Text, language: str | None, /, **fields: Any) -> str:
    """The notice `key` in `language` (English when unsupported), with `fields` filled in.

    `key` and `language` are positional-only so that `language=` is free to be the field of
    `Text.LANG_SET`. Raises KeyError when a field the text needs (see `FIELDS`) is missing.
    """
    template = _TEXTS[resolve_language(language)][Text(key)]
    return template.format(**fields)
