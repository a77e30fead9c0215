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

from bot.kernel.languages import resolve_language


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
    KNOWLEDGE_NOT_FOUND = "knowledge_not_found"
    SOURCES = "sources"
    PAGE = "page"
    #: WhatsApp's monthly message budget is spent (WHATSAPP_MONTHLY_MESSAGE_BUDGET).
    PAUSED = "paused"
    HANDOFF_STARTED = "handoff_started"
    HANDOFF_CONFIRM = "handoff_confirm"
    #: A file sent in chat (workers/turn/reading.py) that could not be read, that needs a
    #: password, or that was read only in part (its text cut to the budget, pages left out).
    DOCUMENT_UNREADABLE = "document_unreadable"
    DOCUMENT_ENCRYPTED = "document_encrypted"
    DOCUMENT_CUT = "document_cut"
    #: Above WhatsApp's 👍/👎 buttons when the answer itself is too long to carry them.
    FEEDBACK_ASK = "feedback_ask"
    #: Telegram's callback answer (a brief toast) once a 👍/👎 is stored.
    FEEDBACK_THANKS = "feedback_thanks"


#: The `str.format` fields each text needs; texts not listed take none.
FIELDS: dict[Text, frozenset[str]] = {
    Text.FILE_TOO_LARGE: frozenset({"limit_mb"}),
    Text.LANG_SET: frozenset({"language"}),
    Text.LANG_UNKNOWN: frozenset({"codes"}),
    Text.AUDIO_TOO_LONG: frozenset({"minutes"}),
    Text.PAGE: frozenset({"page"}),
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
        Text.PAUSED: 'This service is paused until the end of the month. Thank you for your patience.',
        Text.GREETING: (
            "Hi! I'm SEA-LION, an AI assistant from AI Singapore. Send me a message, a photo or a "
            "document (PDF, Word or text file) and I'll answer in your language."
        ),
        Text.HELP: (
            "I'm SEA-LION, an AI assistant from AI Singapore. Ask me anything, or send a photo or "
            "a document (PDF, Word .docx or text file) and ask about it — I'll answer in your "
            "language.\n\n"
            "Commands:\n"
            "/reset – start a new conversation\n"
            "/lang <code> – choose the reply language (for example /lang th)\n"
            "/lang auto – reply in whatever language you write in\n"
            "/human – talk to a person from our team\n"
            "/help – show this message"
        ),
        Text.RESET_DONE: "Done! I've cleared our conversation. Let's start fresh.",
        Text.APOLOGY: (
            "Sorry, something went wrong while I was writing my answer. Please try again."
        ),
        Text.UNSUPPORTED: (
            "Sorry, I can't read this kind of message. I can read text, photos and documents: PDF, "
            "Word (.docx) and text files."
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
        Text.PAUSED: 'Layanan ini dihentikan sementara sampai akhir bulan. Terima kasih atas kesabaranmu.',
        Text.GREETING: (
            "Halo! Saya SEA-LION, asisten AI dari AI Singapore. Kirim pesan, foto, atau dokumen "
            "(file PDF, Word, atau teks), nanti saya jawab dalam bahasamu."
        ),
        Text.HELP: (
            "Saya SEA-LION, asisten AI dari AI Singapore. Tanyakan apa saja, atau kirim foto atau "
            "dokumen (PDF, Word .docx, atau file teks) lalu tanyakan tentang isinya — saya akan "
            "menjawab dalam bahasamu.\n\n"
            "Perintah:\n"
            "/reset – mulai percakapan baru\n"
            "/lang <kode> – pilih bahasa balasan (misalnya /lang id)\n"
            "/lang auto – balas dalam bahasa yang kamu pakai\n"
            "/human – bicara dengan petugas kami\n"
            "/help – tampilkan pesan ini"
        ),
        Text.RESET_DONE: "Beres! Percakapan kita sudah dihapus. Yuk, mulai dari awal.",
        Text.APOLOGY: "Maaf, ada yang salah saat saya menyusun jawaban. Coba lagi, ya.",
        Text.UNSUPPORTED: (
            "Maaf, saya tidak bisa membaca jenis pesan ini. Saya bisa membaca teks, foto, dan "
            "dokumen: file PDF, Word (.docx), dan teks."
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
        Text.PAUSED: 'Perkhidmatan ini dihentikan sementara sehingga hujung bulan. Terima kasih atas kesabaran anda.',
        Text.GREETING: (
            "Hai! Saya SEA-LION, pembantu AI daripada AI Singapore. Hantarlah mesej, gambar atau "
            "dokumen (fail PDF, Word atau teks), dan saya akan balas dalam bahasa anda."
        ),
        Text.HELP: (
            "Saya SEA-LION, pembantu AI daripada AI Singapore. Tanyalah apa sahaja, atau hantar "
            "gambar atau dokumen (PDF, Word .docx atau fail teks) dan tanya tentangnya — saya akan "
            "jawab dalam bahasa anda.\n\n"
            "Arahan:\n"
            "/reset – mulakan perbualan baharu\n"
            "/lang <kod> – pilih bahasa balasan (contohnya /lang ms)\n"
            "/lang auto – balas dalam bahasa yang anda gunakan\n"
            "/human – bercakap dengan pegawai kami\n"
            "/help – papar mesej ini"
        ),
        Text.RESET_DONE: "Siap! Perbualan kita sudah dipadam. Jom mula semula.",
        Text.APOLOGY: "Maaf, ada masalah semasa saya menyediakan jawapan. Sila cuba lagi.",
        Text.UNSUPPORTED: (
            "Maaf, saya tidak dapat membaca jenis mesej ini. Saya boleh membaca teks, gambar dan "
            "dokumen: fail PDF, Word (.docx) dan teks."
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
        Text.PAUSED: 'Nakahinto muna ang serbisyong ito hanggang katapusan ng buwan. Salamat sa iyong pasensya.',
        Text.GREETING: (
            "Hi! Ako si SEA-LION, isang AI assistant mula sa AI Singapore. Magpadala ka ng "
            "mensahe, litrato o dokumento (PDF, Word o text file), at sasagot ako sa sarili mong "
            "wika."
        ),
        Text.HELP: (
            "Ako si SEA-LION, isang AI assistant mula sa AI Singapore. Magtanong ka ng kahit ano, "
            "o magpadala ng litrato o dokumento (PDF, Word .docx o text file) at magtanong tungkol "
            "dito — sasagot ako sa wika mo.\n\n"
            "Mga command:\n"
            "/reset – magsimula ng bagong usapan\n"
            "/lang <code> – piliin ang wika ng sagot (halimbawa: /lang tl)\n"
            "/lang auto – sasagot ako sa wikang ginagamit mo\n"
            "/human – makipag-usap sa isang tao mula sa aming team\n"
            "/help – ipakita ang mensaheng ito"
        ),
        Text.RESET_DONE: "Ayan, na-clear na ang usapan natin. Simulan natin ulit!",
        Text.APOLOGY: "Pasensya na, nagkaproblema habang ginagawa ko ang sagot. Pakisubukan ulit.",
        Text.UNSUPPORTED: (
            "Pasensya na, hindi ko mabasa ang ganitong uri ng mensahe. Kaya kong basahin ang text, "
            "litrato at dokumento: PDF, Word (.docx) at text file."
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
        Text.PAUSED: 'บริการนี้หยุดชั่วคราวจนถึงสิ้นเดือน ขอบคุณที่รอนะ',
        Text.GREETING: (
            "สวัสดี! ฉันคือ SEA-LION ผู้ช่วย AI จาก AI Singapore ส่งข้อความ รูปภาพ หรือเอกสาร "
            "(ไฟล์ PDF, Word หรือไฟล์ข้อความ) มาได้เลย แล้วฉันจะตอบเป็นภาษาของคุณ"
        ),
        Text.HELP: (
            "ฉันคือ SEA-LION ผู้ช่วย AI จาก AI Singapore ถามอะไรก็ได้ หรือจะส่งรูปหรือเอกสาร (PDF, "
            "Word .docx หรือไฟล์ข้อความ) มาแล้วถามเกี่ยวกับสิ่งนั้นก็ได้ ฉันจะตอบเป็นภาษาของคุณ\n\n"
            "คำสั่ง:\n"
            "/reset – เริ่มบทสนทนาใหม่\n"
            "/lang <รหัสภาษา> – เลือกภาษาที่จะให้ตอบ (เช่น /lang th)\n"
            "/lang auto – ตอบเป็นภาษาเดียวกับที่คุณพิมพ์มา\n"
            "/human – คุยกับเจ้าหน้าที่ของเรา\n"
            "/help – แสดงข้อความนี้"
        ),
        Text.RESET_DONE: "เรียบร้อย! ล้างบทสนทนาแล้ว มาเริ่มกันใหม่ได้เลย",
        Text.APOLOGY: "ขออภัย เกิดข้อผิดพลาดระหว่างสร้างคำตอบ ลองใหม่อีกครั้งนะ",
        Text.UNSUPPORTED: (
            "ขออภัย ฉันอ่านข้อความประเภทนี้ไม่ได้ ฉันอ่านได้ทั้งข้อความ รูปภาพ "
            "และเอกสารที่เป็นไฟล์ PDF, Word (.docx) หรือไฟล์ข้อความ"
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
        Text.PAUSED: 'Dịch vụ này tạm dừng đến hết tháng. Cảm ơn bạn đã kiên nhẫn.',
        Text.GREETING: (
            "Xin chào! Mình là SEA-LION, trợ lý AI của AI Singapore. Bạn cứ gửi tin nhắn, ảnh hoặc "
            "tài liệu (tệp PDF, Word hay tệp văn bản), mình sẽ trả lời bằng ngôn ngữ của bạn nhé."
        ),
        Text.HELP: (
            "Mình là SEA-LION, trợ lý AI của AI Singapore. Bạn có thể hỏi mình bất cứ điều gì, "
            "hoặc gửi ảnh hay tài liệu (PDF, Word .docx hoặc tệp văn bản) rồi hỏi về nội dung đó — "
            "mình sẽ trả lời bằng ngôn ngữ của bạn.\n\n"
            "Các lệnh:\n"
            "/reset – bắt đầu cuộc trò chuyện mới\n"
            "/lang <mã> – chọn ngôn ngữ trả lời (ví dụ: /lang vi)\n"
            "/lang auto – trả lời bằng ngôn ngữ bạn đang dùng\n"
            "/human – nói chuyện với nhân viên của chúng tôi\n"
            "/help – xem lại hướng dẫn này"
        ),
        Text.RESET_DONE: "Xong rồi! Mình đã xoá cuộc trò chuyện. Mình bắt đầu lại nhé.",
        Text.APOLOGY: (
            "Xin lỗi, đã có lỗi xảy ra khi mình soạn câu trả lời. Bạn thử lại giúp mình nhé."
        ),
        Text.UNSUPPORTED: (
            "Xin lỗi, mình không đọc được loại tin nhắn này. Mình đọc được tin nhắn văn bản, ảnh "
            "và tài liệu: tệp PDF, Word (.docx) và tệp văn bản."
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
        Text.PAUSED: 'இந்தச் சேவை மாத இறுதி வரை நிறுத்தி வைக்கப்பட்டுள்ளது. உங்கள் பொறுமைக்கு நன்றி.',
        Text.GREETING: (
            "வணக்கம்! நான் SEA-LION, AI Singapore-இன் AI உதவியாளர். எனக்கு ஒரு செய்தி, புகைப்படம் "
            "அல்லது ஆவணம் (PDF, Word அல்லது உரைக் கோப்பு) அனுப்புங்கள், உங்கள் மொழியிலேயே பதில் "
            "சொல்கிறேன்."
        ),
        Text.HELP: (
            "நான் SEA-LION, AI Singapore-இன் AI உதவியாளர். எதை வேண்டுமானாலும் கேளுங்கள், அல்லது "
            "ஒரு புகைப்படம் அல்லது ஆவணம் (PDF, Word .docx அல்லது உரைக் கோப்பு) அனுப்பி அதைப் "
            "பற்றிக் கேளுங்கள் — உங்கள் மொழியிலேயே பதில் சொல்வேன்.\n\n"
            "கட்டளைகள்:\n"
            "/reset – புதிய உரையாடலைத் தொடங்க\n"
            "/lang <குறியீடு> – பதில் மொழியைத் தேர்வு செய்ய (எ.கா. /lang ta)\n"
            "/lang auto – நீங்கள் எழுதும் மொழியிலேயே பதில் பெற\n"
            "/human – எங்கள் குழுவைச் சேர்ந்த ஒருவரிடம் பேச\n"
            "/help – இந்தச் செய்தியைக் காட்ட"
        ),
        Text.RESET_DONE: "முடிந்தது! நம் உரையாடலை அழித்துவிட்டேன். புதிதாகத் தொடங்கலாம்.",
        Text.APOLOGY: (
            "மன்னிக்கவும், பதிலைத் தயாரிக்கும்போது ஏதோ தவறு நடந்துவிட்டது. மீண்டும் முயற்சி செய்யுங்கள்."
        ),
        Text.UNSUPPORTED: (
            "மன்னிக்கவும், இந்த வகைச் செய்தியை என்னால் படிக்க முடியாது. உரை, புகைப்படங்கள், "
            "ஆவணங்கள் (PDF, Word (.docx), உரைக் கோப்புகள்) ஆகியவற்றை என்னால் படிக்க முடியும்."
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
        Text.PAUSED: 'ဤဝန်ဆောင်မှုကို လကုန်အထိ ခေတ္တရပ်ထားပါသည်။ စောင့်ဆိုင်းပေးသည့်အတွက် ကျေးဇူးတင်ပါသည်။',
        Text.GREETING: (
            "မင်္ဂလာပါ! SEA-LION ပါ။ AI Singapore က AI လက်ထောက်တစ်ယောက်ပါ။ စာ၊ ဓာတ်ပုံ ဒါမှမဟုတ် "
            "စာရွက်စာတမ်း (PDF၊ Word ဒါမှမဟုတ် စာသားဖိုင်) ပို့လိုက်ပါ၊ သင့်ဘာသာစကားနဲ့ "
            "ပြန်ဖြေပေးပါမယ်။"
        ),
        Text.HELP: (
            "SEA-LION ပါ။ AI Singapore က AI လက်ထောက်တစ်ယောက်ပါ။ ဘာမဆို မေးနိုင်ပါတယ်၊ ဓာတ်ပုံ "
            "ဒါမှမဟုတ် စာရွက်စာတမ်း (PDF၊ Word .docx ဒါမှမဟုတ် စာသားဖိုင်) ပို့ပြီး "
            "အဲဒီအကြောင်းလည်း မေးနိုင်ပါတယ်။ သင့်ဘာသာစကားနဲ့ ပြန်ဖြေပေးပါမယ်။\n\n"
            "အမိန့်များ:\n"
            "/reset – စကားဝိုင်းအသစ် စတင်ရန်\n"
            "/lang <ကုဒ်> – ပြန်ဖြေမယ့် ဘာသာစကား ရွေးရန် (ဥပမာ /lang my)\n"
            "/lang auto – သင်ရေးတဲ့ ဘာသာစကားနဲ့ပဲ ပြန်ဖြေရန်\n"
            "/human – ကျွန်ုပ်တို့ ဝန်ထမ်းနဲ့ ပြောရန်\n"
            "/help – ဒီစာကို ပြရန်"
        ),
        Text.RESET_DONE: "ပြီးပါပြီ! စကားဝိုင်းကို ရှင်းလင်းလိုက်ပါပြီ။ အသစ်ကနေ ပြန်စကြရအောင်။",
        Text.APOLOGY: "တောင်းပန်ပါတယ်၊ အဖြေရေးနေစဉ် တစ်ခုခု မှားယွင်းသွားပါတယ်။ နောက်တစ်ကြိမ် ထပ်စမ်းကြည့်ပေးပါ။",
        Text.UNSUPPORTED: (
            "တောင်းပန်ပါတယ်၊ ဒီလို မက်ဆေ့ချ်အမျိုးအစားကို မဖတ်နိုင်ပါဘူး။ စာ၊ ဓာတ်ပုံ နဲ့ "
            "စာရွက်စာတမ်း (PDF၊ Word (.docx) နဲ့ စာသားဖိုင်) တွေကို ဖတ်နိုင်ပါတယ်။"
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
        Text.PAUSED: 'សេវានេះត្រូវបានផ្អាករហូតដល់ចុងខែ។ សូមអរគុណចំពោះការអត់ធ្មត់របស់អ្នក។',
        Text.GREETING: (
            "សួស្ដី! ខ្ញុំគឺ SEA-LION ជាជំនួយការ AI មកពី AI Singapore។ ផ្ញើសារ រូបថត ឬឯកសារ (PDF, "
            "Word ឬឯកសារអក្សរ) មកខ្ញុំបានទាំងអស់ ខ្ញុំនឹងឆ្លើយជាភាសារបស់អ្នក។"
        ),
        Text.HELP: (
            "ខ្ញុំគឺ SEA-LION ជាជំនួយការ AI មកពី AI Singapore។ សួរអ្វីក៏បាន ឬផ្ញើរូបថត ឬឯកសារ "
            "(PDF, Word .docx ឬឯកសារអក្សរ) មក ហើយសួរអំពីវា — ខ្ញុំនឹងឆ្លើយជាភាសារបស់អ្នក។\n\n"
            "ពាក្យបញ្ជា៖\n"
            "/reset – ចាប់ផ្ដើមការសន្ទនាថ្មី\n"
            "/lang <កូដ> – ជ្រើសរើសភាសាសម្រាប់ឆ្លើយ (ឧទាហរណ៍ /lang km)\n"
            "/lang auto – ឆ្លើយជាភាសាដែលអ្នកសរសេរ\n"
            "/human – និយាយជាមួយបុគ្គលិករបស់យើង\n"
            "/help – បង្ហាញសារនេះ"
        ),
        Text.RESET_DONE: "រួចរាល់! ខ្ញុំបានលុបការសន្ទនារបស់យើងហើយ។ តោះចាប់ផ្ដើមសាជាថ្មី។",
        Text.APOLOGY: "សូមអភ័យទោស មានបញ្ហាកើតឡើងពេលខ្ញុំកំពុងរៀបចំចម្លើយ។ សូមសាកល្បងម្ដងទៀត។",
        Text.UNSUPPORTED: (
            "សូមអភ័យទោស ខ្ញុំមិនអាចអានសារប្រភេទនេះបានទេ។ ខ្ញុំអាចអានអក្សរ រូបថត និងឯកសារ (PDF, "
            "Word (.docx) និងឯកសារអក្សរ)។"
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
        Text.PAUSED: 'ບໍລິການນີ້ຢຸດຊົ່ວຄາວຈົນຮອດທ້າຍເດືອນ. ຂອບໃຈທີ່ອົດທົນລໍຖ້າ.',
        Text.GREETING: (
            "ສະບາຍດີ! ຂ້ອຍແມ່ນ SEA-LION, ຜູ້ຊ່ວຍ AI ຈາກ AI Singapore. ສົ່ງຂໍ້ຄວາມ, ຮູບພາບ ຫຼື "
            "ເອກະສານ (ໄຟລ໌ PDF, Word ຫຼື ໄຟລ໌ຂໍ້ຄວາມ) ມາໄດ້ເລີຍ ແລ້ວຂ້ອຍຈະຕອບເປັນພາສາຂອງເຈົ້າ."
        ),
        Text.HELP: (
            "ຂ້ອຍແມ່ນ SEA-LION, ຜູ້ຊ່ວຍ AI ຈາກ AI Singapore. ຖາມຫຍັງກໍໄດ້ ຫຼື ສົ່ງຮູບ ຫຼື ເອກະສານ "
            "(PDF, Word .docx ຫຼື ໄຟລ໌ຂໍ້ຄວາມ) ມາແລ້ວຖາມກ່ຽວກັບມັນກໍໄດ້ — "
            "ຂ້ອຍຈະຕອບເປັນພາສາຂອງເຈົ້າ.\n\n"
            "ຄຳສັ່ງ:\n"
            "/reset – ເລີ່ມການສົນທະນາໃໝ່\n"
            "/lang <ລະຫັດ> – ເລືອກພາສາທີ່ຈະໃຫ້ຕອບ (ຕົວຢ່າງ /lang lo)\n"
            "/lang auto – ຕອບເປັນພາສາດຽວກັບທີ່ເຈົ້າພິມມາ\n"
            "/human – ລົມກັບພະນັກງານຂອງພວກເຮົາ\n"
            "/help – ສະແດງຂໍ້ຄວາມນີ້"
        ),
        Text.RESET_DONE: "ຮຽບຮ້ອຍແລ້ວ! ລຶບການສົນທະນາແລ້ວ ມາເລີ່ມໃໝ່ກັນເລີຍ.",
        Text.APOLOGY: "ຂໍອະໄພ, ມີບັນຫາເກີດຂຶ້ນໃນຂະນະທີ່ສ້າງຄຳຕອບ. ກະລຸນາລອງໃໝ່ອີກຄັ້ງ.",
        Text.UNSUPPORTED: (
            "ຂໍອະໄພ, ຂ້ອຍອ່ານຂໍ້ຄວາມປະເພດນີ້ບໍ່ໄດ້. ຂ້ອຍອ່ານໄດ້ຂໍ້ຄວາມ, ຮູບພາບ ແລະ ເອກະສານ (ໄຟລ໌ "
            "PDF, Word (.docx) ແລະ ໄຟລ໌ຂໍ້ຄວາມ)."
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
        Text.PAUSED: '本服务暂停至本月底。感谢你的耐心。',
        Text.GREETING: (
            "你好！我是 SEA-LION，来自 AI Singapore 的 AI 助手。给我发文字、图片或文档（PDF、Word 或文本文件），我会用你的语言回复你。"
        ),
        Text.HELP: (
            "我是 SEA-LION，来自 AI Singapore 的 AI 助手。你可以问我任何问题，也可以发一张图片或一份文档（PDF、Word .docx "
            "或文本文件），问我和它有关的问题——我会用你的语言回答。\n\n"
            "指令：\n"
            "/reset – 开始新的对话\n"
            "/lang <代码> – 选择回复语言（例如 /lang zh）\n"
            "/lang auto – 用你所写的语言回复\n"
            "/human – 联系我们的工作人员\n"
            "/help – 显示这条消息"
        ),
        Text.RESET_DONE: "好了！对话已清空，我们重新开始吧。",
        Text.APOLOGY: "抱歉，生成回答时出了点问题，请再试一次。",
        Text.UNSUPPORTED: (
            "抱歉，我读不了这类消息。我可以读文字、图片和文档（PDF、Word（.docx）和文本文件）。"
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

#: The knowledge base's texts (issue #22): strict mode's decline, and the sources line the
#: bot writes under an answer ("Sources: Clinic handbook, p. 3").
_KNOWLEDGE: dict[str, tuple[str, str, str]] = {
    "en": ("Sorry, I couldn't find that in the information I have. Please ask in another way, "
           "or contact us directly.", "Sources", "p. {page}"),
    "id": ("Maaf, saya tidak menemukannya dalam informasi yang saya miliki. Silakan bertanya "
           "dengan cara lain, atau hubungi kami langsung.", "Sumber", "hlm. {page}"),
    "ms": ("Maaf, saya tidak menemuinya dalam maklumat yang saya ada. Sila tanya dengan cara "
           "lain, atau hubungi kami terus.", "Sumber", "ms. {page}"),
    "tl": ("Paumanhin, hindi ko iyan nakita sa impormasyong mayroon ako. Pakitanong sa ibang "
           "paraan, o makipag-ugnayan sa amin nang direkta.", "Mga pinagkunan", "pahina {page}"),
    "th": ("ขออภัย ฉันไม่พบเรื่องนี้ในข้อมูลที่มีอยู่ กรุณาถามด้วยวิธีอื่น หรือติดต่อเราโดยตรง",
           "แหล่งที่มา", "หน้า {page}"),
    "vi": ("Xin lỗi, tôi không tìm thấy điều đó trong thông tin tôi có. Vui lòng hỏi theo cách "
           "khác, hoặc liên hệ trực tiếp với chúng tôi.", "Nguồn", "tr. {page}"),
    "ta": ("மன்னிக்கவும், என்னிடம் உள்ள தகவல்களில் அதைக் கண்டுபிடிக்க முடியவில்லை. வேறு விதமாகக் "
           "கேளுங்கள், அல்லது எங்களை நேரடியாகத் தொடர்புகொள்ளுங்கள்.", "மூலங்கள்", "பக். {page}"),
    "my": ("ဝမ်းနည်းပါတယ်၊ ကျွန်ုပ်မှာရှိတဲ့ အချက်အလက်တွေထဲမှာ အဲဒါကို မတွေ့ပါ။ တခြားနည်းနဲ့ "
           "မေးပေးပါ၊ ဒါမှမဟုတ် ကျွန်ုပ်တို့ကို တိုက်ရိုက် ဆက်သွယ်ပါ။", "ရင်းမြစ်များ",
           "စာမျက်နှာ {page}"),
    "km": ("សូមអភ័យទោស ខ្ញុំរកមិនឃើញរឿងនោះក្នុងព័ត៌មានដែលខ្ញុំមានទេ។ សូមសួរតាមរបៀបផ្សេង "
           "ឬទាក់ទងមកយើងដោយផ្ទាល់។", "ប្រភព", "ទំព័រ {page}"),
    "lo": ("ຂໍອະໄພ, ຂ້ອຍບໍ່ພົບເລື່ອງນັ້ນໃນຂໍ້ມູນທີ່ຂ້ອຍມີ. ກະລຸນາຖາມດ້ວຍວິທີອື່ນ "
           "ຫຼື ຕິດຕໍ່ພວກເຮົາໂດຍກົງ.", "ແຫຼ່ງຂໍ້ມູນ", "ໜ້າ {page}"),
    "zh": ("抱歉，我在现有的资料里没有找到这个问题的答案。请换个方式提问，或直接联系我们。",
           "来源", "第{page}页"),
}
for _language, (_not_found, _sources, _page) in _KNOWLEDGE.items():
    _TEXTS[_language].update({Text.KNOWLEDGE_NOT_FOUND: _not_found, Text.SOURCES: _sources,
                              Text.PAGE: _page})


#: The hand-off to a person (storage/handoff.py): the notice, once, and the question asked when
#: a request in words is unsure.
_HANDOFF_TEXTS: dict[str, dict[Text, str]] = {
    "en": {
        Text.HANDOFF_STARTED: (
            "I've asked a person from our team to reply. They'll answer here; until then I'll "
            "stay quiet."),
        Text.HANDOFF_CONFIRM: "Would you like to talk to a person from our team? Send /human.",
    },
    "id": {
        Text.HANDOFF_STARTED: (
            "Saya sudah meminta petugas kami untuk membalas. Mereka akan menjawab di sini; "
            "sementara itu saya diam dulu."),
        Text.HANDOFF_CONFIRM: "Mau bicara dengan petugas kami? Kirim /human.",
    },
    "ms": {
        Text.HANDOFF_STARTED: (
            "Saya telah meminta pegawai kami untuk membalas. Mereka akan menjawab di sini; "
            "sementara itu saya akan berdiam diri."),
        Text.HANDOFF_CONFIRM: "Mahu bercakap dengan pegawai kami? Hantar /human.",
    },
    "tl": {
        Text.HANDOFF_STARTED: (
            "Humiling na ako sa isang tao mula sa aming team na sumagot. Dito sila sasagot; "
            "hanggang doon, tatahimik muna ako."),
        Text.HANDOFF_CONFIRM: "Gusto mo bang makausap ang isang tao mula sa aming team? "
                              "Ipadala ang /human.",
    },
    "th": {
        Text.HANDOFF_STARTED: (
            "ฉันขอให้เจ้าหน้าที่ของเรามาตอบแล้ว เจ้าหน้าที่จะตอบในแชทนี้ ระหว่างนี้ฉันจะไม่ตอบนะ"),
        Text.HANDOFF_CONFIRM: "อยากคุยกับเจ้าหน้าที่ของเราไหม? ส่ง /human มาได้เลย",
    },
    "vi": {
        Text.HANDOFF_STARTED: (
            "Mình đã nhờ một nhân viên của chúng tôi trả lời. Họ sẽ trả lời tại đây; trong lúc "
            "chờ, mình sẽ không trả lời nữa."),
        Text.HANDOFF_CONFIRM: "Bạn có muốn nói chuyện với nhân viên của chúng tôi không? "
                              "Hãy gửi /human.",
    },
    "ta": {
        Text.HANDOFF_STARTED: (
            "எங்கள் குழுவைச் சேர்ந்த ஒருவரைப் பதிலளிக்கச் சொல்லியிருக்கிறேன். அவர் இங்கே "
            "பதிலளிப்பார்; அதுவரை நான் அமைதியாக இருப்பேன்."),
        Text.HANDOFF_CONFIRM: "எங்கள் குழுவைச் சேர்ந்த ஒருவரிடம் பேச விரும்புகிறீர்களா? "
                              "/human அனுப்புங்கள்.",
    },
    "my": {
        Text.HANDOFF_STARTED: (
            "ကျွန်ုပ်တို့ ဝန်ထမ်းတစ်ဦးကို ပြန်ဖြေပေးဖို့ ပြောထားပါပြီ။ ဒီမှာ ပြန်ဖြေပါလိမ့်မယ်၊ "
            "အဲဒီအထိ ကျွန်တော် မဖြေတော့ပါဘူး။"),
        Text.HANDOFF_CONFIRM: "ကျွန်ုပ်တို့ ဝန်ထမ်းနဲ့ ပြောချင်ပါသလား။ /human ကို ပို့ပါ။",
    },
    "km": {
        Text.HANDOFF_STARTED: (
            "ខ្ញុំបានស្នើឱ្យបុគ្គលិករបស់យើងឆ្លើយតប។ ពួកគេនឹងឆ្លើយនៅទីនេះ; រហូតដល់ពេលនោះ "
            "ខ្ញុំនឹងនៅស្ងៀម។"),
        Text.HANDOFF_CONFIRM: "តើអ្នកចង់និយាយជាមួយបុគ្គលិករបស់យើងទេ? សូមផ្ញើ /human។",
    },
    "lo": {
        Text.HANDOFF_STARTED: (
            "ຂ້ອຍໄດ້ຂໍໃຫ້ພະນັກງານຂອງພວກເຮົາມາຕອບແລ້ວ. ເຂົາເຈົ້າຈະຕອບຢູ່ນີ້; ລະຫວ່າງນີ້ "
            "ຂ້ອຍຈະບໍ່ຕອບ."),
        Text.HANDOFF_CONFIRM: "ຢາກລົມກັບພະນັກງານຂອງພວກເຮົາບໍ? ສົ່ງ /human ມາໄດ້ເລີຍ.",
    },
    "zh": {
        Text.HANDOFF_STARTED: "我已请我们的工作人员来回复你。他们会在这里回答；在此之前我先不回复。",
        Text.HANDOFF_CONFIRM: "想和我们的工作人员聊聊吗？请发送 /human。",
    },
}
for _language, _extra in _HANDOFF_TEXTS.items():
    _TEXTS[_language].update(_extra)


_DOCUMENT_TEXTS: dict[str, tuple[str, str, str]] = {
    "en": ("Sorry, I couldn't read this file. I can read PDF, Word (.docx) and text files.",
           "This file is protected with a password, so I can't open it. Could you send it "
           "without the password?",
           "This document is long, so I read only the first part of it."),
    "id": ("Maaf, saya tidak bisa membaca file ini. Saya bisa membaca file PDF, Word (.docx), "
           "dan teks.",
           "File ini dilindungi kata sandi, jadi saya tidak bisa membukanya. Bisa kirim ulang "
           "tanpa kata sandi?",
           "Dokumen ini panjang, jadi saya hanya membaca bagian awalnya."),
    "ms": ("Maaf, saya tidak dapat membaca fail ini. Saya boleh membaca fail PDF, Word (.docx) "
           "dan teks.",
           "Fail ini dilindungi kata laluan, jadi saya tidak dapat membukanya. Boleh hantar "
           "semula tanpa kata laluan?",
           "Dokumen ini panjang, jadi saya hanya membaca bahagian awalnya."),
    "tl": ("Pasensya na, hindi ko mabasa ang file na ito. Kaya kong basahin ang PDF, Word "
           "(.docx) at text file.",
           "May password ang file na ito kaya hindi ko ito mabuksan. Puwede mo bang ipadala "
           "ulit nang walang password?",
           "Mahaba ang dokumentong ito, kaya ang unang bahagi lang nito ang nabasa ko."),
    "th": ("ขออภัย ฉันอ่านไฟล์นี้ไม่ได้ ฉันอ่านได้เฉพาะไฟล์ PDF, Word (.docx) และไฟล์ข้อความ",
           "ไฟล์นี้ตั้งรหัสผ่านไว้ ฉันจึงเปิดไม่ได้ ช่วยส่งไฟล์ที่ไม่มีรหัสผ่านมาใหม่ได้ไหม",
           "เอกสารนี้ยาว ฉันจึงอ่านแค่ช่วงแรกเท่านั้น"),
    "vi": ("Xin lỗi, mình không đọc được tệp này. Mình đọc được tệp PDF, Word (.docx) và tệp "
           "văn bản.",
           "Tệp này có mật khẩu nên mình không mở được. Bạn gửi lại bản không có mật khẩu "
           "nhé?",
           "Tài liệu này dài nên mình chỉ đọc được phần đầu."),
    "ta": ("மன்னிக்கவும், இந்தக் கோப்பை என்னால் படிக்க முடியவில்லை. PDF, Word (.docx), உரைக் "
           "கோப்புகளை என்னால் படிக்க முடியும்.",
           "இந்தக் கோப்பு கடவுச்சொல்லால் பாதுகாக்கப்பட்டுள்ளதால் என்னால் திறக்க முடியவில்லை. "
           "கடவுச்சொல் இல்லாமல் மீண்டும் அனுப்ப முடியுமா?",
           "இந்த ஆவணம் நீளமாக இருப்பதால் அதன் முதல் பகுதியை மட்டுமே படித்தேன்."),
    "my": ("တောင်းပန်ပါတယ်၊ ဒီဖိုင်ကို ဖတ်လို့မရပါဘူး။ PDF၊ Word (.docx) နဲ့ စာသားဖိုင်တွေကို "
           "ဖတ်နိုင်ပါတယ်။",
           "ဒီဖိုင်မှာ စကားဝှက် ပါနေလို့ ဖွင့်လို့မရပါဘူး။ စကားဝှက်မပါဘဲ ထပ်ပို့ပေးနိုင်မလား။",
           "ဒီစာရွက်စာတမ်းက ရှည်လို့ အစပိုင်းကိုပဲ ဖတ်ထားပါတယ်။"),
    "km": ("សូមអភ័យទោស ខ្ញុំមិនអាចអានឯកសារនេះបានទេ។ ខ្ញុំអាចអានឯកសារ PDF, Word (.docx) "
           "និងឯកសារអក្សរ។",
           "ឯកសារនេះមានពាក្យសម្ងាត់ ដូច្នេះខ្ញុំមិនអាចបើកវាបានទេ។ "
           "តើអាចផ្ញើវាម្ដងទៀតដោយគ្មានពាក្យសម្ងាត់បានទេ?",
           "ឯកសារនេះវែង ដូច្នេះខ្ញុំបានអានតែផ្នែកដំបូងរបស់វាប៉ុណ្ណោះ។"),
    "lo": ("ຂໍອະໄພ, ຂ້ອຍອ່ານໄຟລ໌ນີ້ບໍ່ໄດ້. ຂ້ອຍອ່ານໄດ້ໄຟລ໌ PDF, Word (.docx) ແລະ ໄຟລ໌ຂໍ້ຄວາມ.",
           "ໄຟລ໌ນີ້ມີລະຫັດຜ່ານ ຂ້ອຍຈຶ່ງເປີດບໍ່ໄດ້. ສົ່ງໄຟລ໌ທີ່ບໍ່ມີລະຫັດຜ່ານມາໃໝ່ໄດ້ບໍ?",
           "ເອກະສານນີ້ຍາວ ຂ້ອຍຈຶ່ງອ່ານພຽງແຕ່ສ່ວນທຳອິດ."),
    "zh": ("抱歉，我读不了这个文件。我可以读 PDF、Word（.docx）和文本文件。",
           "这个文件设有密码，我打不开。可以发一份没有密码的吗？",
           "这份文件很长，我只读了开头的部分。"),
}
for _language, (_unreadable, _encrypted, _cut) in _DOCUMENT_TEXTS.items():
    _TEXTS[_language].update({Text.DOCUMENT_UNREADABLE: _unreadable,
                              Text.DOCUMENT_ENCRYPTED: _encrypted, Text.DOCUMENT_CUT: _cut})
#: Feedback on answers (FEEDBACK_BUTTONS): the question above WhatsApp's buttons after a long
#: answer, and the thanks shown when a Telegram button is tapped.
_FEEDBACK: dict[str, tuple[str, str]] = {
    "en": ("Was this answer helpful?", "Thank you for your feedback."),
    "id": ("Apakah jawaban ini membantu?", "Terima kasih atas masukan Anda."),
    "ms": ("Adakah jawapan ini membantu?", "Terima kasih atas maklum balas anda."),
    "tl": ("Nakatulong ba ang sagot na ito?", "Salamat sa iyong puna."),
    "th": ("คำตอบนี้มีประโยชน์ไหม", "ขอบคุณสำหรับความคิดเห็นของคุณ"),
    "vi": ("Câu trả lời này có hữu ích không?", "Cảm ơn bạn đã góp ý."),
    "ta": ("இந்தப் பதில் உதவியாக இருந்ததா?", "உங்கள் கருத்துக்கு நன்றி."),
    "my": ("ဒီအဖြေက အသုံးဝင်ပါသလား။", "သင့်အကြံပြုချက်အတွက် ကျေးဇူးတင်ပါတယ်။"),
    "km": ("តើចម្លើយនេះមានប្រយោជន៍ទេ?", "សូមអរគុណចំពោះមតិរបស់អ្នក។"),
    "lo": ("ຄຳຕອບນີ້ມີປະໂຫຍດບໍ່?", "ຂອບໃຈສຳລັບຄຳຕິຊົມຂອງທ່ານ."),
    "zh": ("这个回答有帮助吗？", "谢谢你的反馈。"),
}
for _language, (_ask, _thanks) in _FEEDBACK.items():
    _TEXTS[_language].update({Text.FEEDBACK_ASK: _ask, Text.FEEDBACK_THANKS: _thanks})


def text(key: Text, language: str | None, /, **fields: Any) -> str:
    """The notice `key` in `language` (English when unsupported), with `fields` filled in.

    `key` and `language` are positional-only so that `language=` is free to be the field of
    `Text.LANG_SET`. Raises KeyError when a field the text needs (see `FIELDS`) is missing.
    """
    template = _TEXTS[resolve_language(language)][Text(key)]
    return template.format(**fields)
