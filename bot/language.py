"""Which language to answer in.

`detect` names the language of a chat message; `choose_reply_language` turns that into the
conversation's reply language with the fallbacks a chat needs.

How `detect` decides:

1. `clean` drops what carries no language: URLs, e-mail addresses, @mentions, /commands,
   emoji, digits and punctuation.
2. Scripts that name one language settle it by Unicode block: Thai, Lao, Khmer, Myanmar,
   Tamil, Han (zh; any kana makes it ja), Hangul (ko), and a few others outside Southeast
   Asia. When a message mixes scripts the one with the most letters wins (a Han, kana or
   Hangul character counts as 3 letters, being a syllable or a word).
3. Latin-script text is the hard part: English, Indonesian, Malay, Filipino and Vietnamese,
   plus es/fr/de/pt/it/nl for visitors from elsewhere. Three kinds of evidence are added up in
   log-odds:
   - py3langid's naive Bayes model (byte n-grams, deterministic, bundled with its wheel: no
     download) restricted to those languages, tempered for short text;
   - word lists of each language's common and distinctive words (chat spelling included),
     which carry 1-3-word fragments the n-gram model gets wrong, and weigh a Southeast Asian
     language's words over English ones in code-mixed chat (Taglish, Manglish);
   - Vietnamese letters (ă đ ơ ư and tone marks on them) that no other language uses.
   Malay and Indonesian are first scored as one family, then split by a list of words and
   spellings that tell them apart (tak/tidak, kerana/karena, sahaja/saja, kereta/mobil ...)
   and by the model's own Malay-vs-Indonesian odds.

The result carries a confidence: the probability of the winning language, scaled down for
one- and two-word texts, so that "ok bro" or "sama-sama" never reads as a confident answer.
Text with no letters, or only laughter and acknowledgements ("haha", "ok", "lol"), has no
language: `Detection(None, 0.0)`.

Why py3langid: of the libraries measured behind the same script rules and word lists
(langdetect, lingua, pycld2, fastText's bundled lite model, py3langid), it and lingua were
the most accurate on short text, and py3langid is a 4.6 MB wheel against lingua's 96 MB.
Its model knows Malay apart from Indonesian, which langdetect's lacks and the word lists
alone can't do for text without distinctive words. Why es/fr/de/pt/it/nl: they are the
Latin-script languages of most visitors to the region, and without them a Spanish message
reads as Filipino (para, mesa, pero) or a French one as Malay; they carry a penalty that
only clear evidence overcomes, so they never take a short Southeast Asian message.

The model loads on the first Latin-script text (about 0.6 s, about 100 MB); call `warm_up`
at process start to pay that early. Everything is deterministic and works offline.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

#: At or above this confidence a detection may change a conversation's language.
CONFIDENT = 0.80
#: On first contact a detection below this confidence loses to the platform's language hint.
FIRST_CONTACT = 0.50
#: Net words distinctive of Malay (or Indonesian) that it takes to switch between the two.
MS_ID_SWITCH_MARKERS = 2

#: Latin-script languages we tell apart: the ones we serve ...
SEA_LATIN: tuple[str, ...] = ("en", "id", "ms", "tl", "vi")
#: ... and the visitors' languages we recognise rather than misread as one of ours.
OTHER_LATIN: tuple[str, ...] = ("es", "fr", "de", "pt", "it", "nl")

_MAX_CHARS = 2000  # a message's first 2,000 characters decide its language


@dataclass(frozen=True)
class Detection:
    """What `detect` found.

    `language` is an ISO 639-1 code, or None when the text has nothing to tell. `confidence`
    runs from 0 to 1. `method` says what decided: "script", "model" (the Latin-script models)
    or "none". `markers`, when `language` is ms or id, is the net count of words distinctive
    of it against the other (kerana, tak, kedai / karena, gak, toko): the evidence it takes to
    switch a conversation between the two. It is 0 for other languages.
    """

    language: str | None
    confidence: float
    method: str = "none"
    markers: int = 0


NOTHING = Detection(None, 0.0)


# --------------------------------------------------------------------------------- cleaning

_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|edu|gov|io|co|info|biz|me|app|dev|ly|gl|to|tv"
    r"|id|my|sg|ph|th|vn|kh|la|mm|cn|tw|hk|jp|kr|in|au|uk|us)\b(?:/\S*)?",
    re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_HANDLE = re.compile(r"(?<![\w/])[@/][\w.]+")
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")


def _is_letter(char: str) -> bool:
    # Letters and combining marks: Thai, Khmer, Myanmar ... vowels are marks (Mn, Mc).
    return unicodedata.category(char)[0] in "LM"


def clean(text: str) -> str:
    """`text` without URLs, e-mail addresses, @mentions, /commands, emoji, digits and
    punctuation: words (letters and combining marks, with in-word ' and -) separated by
    single spaces."""
    text = unicodedata.normalize("NFC", text[:_MAX_CHARS])
    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    out = []
    previous_letter = False
    for i, char in enumerate(text):
        if _is_letter(char):
            out.append(char)
            previous_letter = True
        elif (char in "'’-" and previous_letter and i + 1 < len(text)
              and _is_letter(text[i + 1])):
            out.append(char)
        else:
            if previous_letter:
                out.append(" ")
            previous_letter = False
    return "".join(out).strip()


# ---------------------------------------------------------------------------------- scripts

# (first code point, last code point, script); scripts map to languages below.
_BLOCKS: tuple[tuple[int, int, str], ...] = tuple(sorted((
    (0x0041, 0x024F, "latin"), (0x1E00, 0x1EFF, "latin"), (0x2C60, 0x2C7F, "latin"),
    (0xA720, 0xA7FF, "latin"), (0xFF21, 0xFF5A, "latin"),
    (0x0370, 0x03FF, "greek"), (0x1F00, 0x1FFF, "greek"),
    (0x0400, 0x052F, "cyrillic"), (0x0530, 0x058F, "armenian"), (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0x08A0, 0x08FF, "arabic"),
    (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0x0980, 0x09FF, "bengali"), (0x0A00, 0x0A7F, "gurmukhi"),
    (0x0A80, 0x0AFF, "gujarati"), (0x0B00, 0x0B7F, "oriya"), (0x0B80, 0x0BFF, "tamil"),
    (0x0C00, 0x0C7F, "telugu"), (0x0C80, 0x0CFF, "kannada"), (0x0D00, 0x0D7F, "malayalam"),
    (0x0D80, 0x0DFF, "sinhala"), (0x0E00, 0x0E7F, "thai"), (0x0E80, 0x0EFF, "lao"),
    (0x0F00, 0x0FFF, "tibetan"), (0x1000, 0x109F, "myanmar"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x1200, 0x137F, "ethiopic"), (0x1780, 0x17FF, "khmer"),
    (0x19E0, 0x19FF, "khmer"), (0x3040, 0x30FF, "kana"), (0x3130, 0x318F, "hangul"),
    (0x31F0, 0x31FF, "kana"), (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"),
    (0xA9E0, 0xA9FF, "myanmar"), (0xAA60, 0xAA7F, "myanmar"), (0xAC00, 0xD7AF, "hangul"),
    (0xF900, 0xFAFF, "han"), (0xFF66, 0xFF9F, "kana"), (0x11FC0, 0x11FFF, "tamil"),
    (0x20000, 0x2FA1F, "han"),
)))
_BLOCK_STARTS = [first for first, _, _ in _BLOCKS]

_SCRIPT_LANGUAGE = {
    "thai": "th", "lao": "lo", "khmer": "km", "myanmar": "my", "tamil": "ta", "han": "zh",
    "kana": "ja", "hangul": "ko", "greek": "el", "cyrillic": "ru", "armenian": "hy",
    "hebrew": "he", "arabic": "ar", "devanagari": "hi", "bengali": "bn", "gurmukhi": "pa",
    "gujarati": "gu", "oriya": "or", "telugu": "te", "kannada": "kn", "malayalam": "ml",
    "sinhala": "si", "tibetan": "bo", "georgian": "ka", "ethiopic": "am",
}
# Characters that stand for a syllable or a word weigh more than an alphabet's letters.
_SCRIPT_WEIGHT = {"han": 3.0, "kana": 3.0, "hangul": 3.0}
_UKRAINIAN = frozenset("іїєґІЇЄҐ")
_PERSIAN = frozenset("پچژگ")
_URDU = frozenset("ٹڈڑںے")


def _script(char: str) -> str | None:
    code = ord(char)
    i = bisect.bisect_right(_BLOCK_STARTS, code) - 1
    if i >= 0 and code <= _BLOCKS[i][1]:
        return _BLOCKS[i][2]
    return None


def _script_language(script: str, letters: str) -> str:
    if script == "cyrillic" and any(c in _UKRAINIAN for c in letters):
        return "uk"
    if script == "arabic":
        if any(c in _URDU for c in letters):
            return "ur"
        if any(c in _PERSIAN for c in letters):
            return "fa"
    return _SCRIPT_LANGUAGE.get(script, "und")


# ------------------------------------------------------------------------------ word lists
#
# Weights are log-odds-like: about 1 for a common word of the language, 2-3 for a word that
# hardly occurs elsewhere. They were written from knowledge of the languages (chat spelling
# included), not fitted to the benchmark; `benchmarks/langid.py` measures the result.

def _tiers(tiers: dict[float, str]) -> dict[str, float]:
    table: dict[str, float] = {}
    for weight, words in tiers.items():
        for word in words.split():
            table[word] = weight
    return table


# English, with Singlish particles (lor, leh, liao): Singlish is answered in English.
_EN = _tiers({
    2.0: """
        i'm you're it's what's don't didn't can't won't isn't i'll i've i'd let's where's
        there's that's doesn't haven't wasn't we're they're she's he's
        """,
    1.5: """
        the is are was were been you your she they their them him her this that these those
        there what how why when where who whose and but of for with from about into than then
        because does did dont cant could would should will shall have has had not yeah please
        thanks thank sorry just really very also still already some any much many most every
        good bad great maybe know think want need get got make take come see look tell said
        ask help time today tomorrow yesterday later soon morning night evening afternoon week
        month year cost buy pay cheap expensive food eat drink hungry weather rain raining
        cold way going went home friend friends people thing things something anything nothing
        everyone someone down over after before only other new old big small long right last
        next first better little lot sounds happy tired sick fever station airport flight
        table send yours mine hers ours anyone ever never always often usually around near
        late early wait minute hour wanna gonna gotta kinda mind agree while until during
        without through lor leh liao shiok walao paiseh
        """,
    1.0: """
        be i im he it we my our here which or to on by if do can yes too yet more all nice
        sure like say work now again day price hot school let out up off well left fine doctor
        clinic bill ticket train book call photo phone far stop open close meh hor
        """,
    0.7: "am me in so go",
    0.5: "a an at no best sia",
    0.3: "lah alamak",
})

# Malay and Indonesian together: the words they share and the words of either.
_MALAY = _tiers({
    2.0: """
        saya berapa mengapa bagaimana karena kerana bahwa bahawa gimana sahaja enggak nggak
        gak ngga udah banget jom korang percuma merupakan ialah iaitu yaitu pelbagai berbagai
        bahagian bagian baharu camne takpe takde makasih
        """,
    1.5: """
        yang dan dari ini itu ada tidak tak aku anda dia mereka apa siapa kenapa sudah dah
        belum akan sedang lagi juga hanya cuma sangat sekali lebih paling boleh bisa dapat mau
        nak mahu harus perlu ingin suka tahu untuk dengan pada dalam oleh atau tapi tetapi
        kalau kalo jika sebab supaya agar seperti sebagai masih pernah telah jangan tolong
        terima kasih maaf selamat pagi siang malam sore petang besok esok hari tadi nanti
        sekarang semua setiap banyak sedikit sikit kecil baik bagus murah harga rumah orang
        makan minum tidur pergi datang pulang beli bayar naik turun masuk keluar kerja sekolah
        duit uang hujan panas sejuk dingin nasi ayam ikan demam ubat obat dokter teman kawan
        ayah bapak kakak adik abang emak kereta mobil pukul minggu bulan tahun macam sini situ
        tempat dekat jauh kiri kanan depan belakang atas bawah antara sama saja aja dong deh
        sih kok nih tuh yuk awak kamu kau engkau kalian gue bikin buat cari tunggu sampai
        jumpa ketemu lihat tengok nonton cakap bilang tanya jawab cuba coba faham paham
        mengerti penat capek letih lapar kenyang sedap enak pedas manis betul benar salah
        mudah susah senang cepat lambat kedai toko kantor cuti libur telepon nombor nomor
        alamat beritahu bagitahu beri ambil hantar kirim guna pakai mesti kena jadi menjadi
        adalah namun walaupun meskipun sehingga hingga sejak selama ketika semasa apabila
        setelah selepas sebelum kemudian tersebut beberapa kerajaan pemerintah negara rakyat
        masyarakat sekitar terhadap melalui menurut mengikut tentang mengenai kepada daripada
        bersama sendiri lain semalam kemarin lepas cantik tiada bukan trims mantap mbak encik
        cikgu
        """,
    1.0: """
        di ke kami kita mana bila tau pun kah nya baru lama besar mahal anak balik jalan wang
        kopi teh susu sakit doktor ibu bas tiket jam sana je iya ga lu tiba kata haus gratis
        pasar pejabat klinik telefon bagi lalu bandar kota ape ia kak pak cik puan
        """,
    0.7: "lah lo alamak",
    0.5: "air ya kasi la mas bu",
    0.3: "hospital",
    0.9: """
        pintu jendela tingkap meja kursi kerusi buku kitab surat kertas pena pensel pensil tas
        beg baju kain warna merah putih hitam hijau biru kuning panjang pendek tinggi rendah
        berat ringan muda tua indah hidup mati cinta hati kepala tangan kaki telinga mulut
        gigi rambut badan tubuh jantung darah tulang laut pantai gunung sungai hutan pohon
        bunga daun buah batu tanah pasir angin langit bintang matahari awan desa kampung dunia
        manusia perempuan wanita pria bayi keluarga suami nenek cucu saudara sahabat guru
        murid siswa nelayan petani pedagang pekerja pegawai raja ratu menteri pemimpin bangsa
        agama tuhan masjid gereja pelabuhan kapal perahu bahasa cerita berita lagu gambar
        permainan bawa buka tutup jual tulis baca dengar ingat lupa kenal belajar ajar bekerja
        bermain berjalan berlari duduk berdiri bangun mandi masak cuci pinjam bantu tinggal
        lahir menikah sulit basah kering bersih kotor penuh kosong miskin kaya selalu sering
        kadang jarang mungkin pasti tentu memang hampir cukup kurang terlalu agak semakin
        makin tiap para sang tanpa sesudah sambil saat waktu masa zaman abad jumlah hasil cara
        jenis bentuk nama umur usia barang soal masalah jawaban pertanyaan pendapat keputusan
        kegiatan pekerjaan perusahaan produk bahan sikap koleksi peristiwa kedua ketiga
        pertama terakhir seluruh banyaknya sebuah seorang sesuatu siapapun apapun manapun
        """,
})

# Filipino (Tagalog), with chat spellings (pano, lng, nman).
_TL = _tiers({
    2.0: """
        ang ng mga ako ikaw siya tayo kayo sila ito iyan iyon yung niya namin natin ninyo nila
        akin iyo kanya amin atin inyo kanila po opo hindi huwag wala walang mayroon meron
        lamang naman talaga kung kapag dahil habang saan nasaan kailan bakit paano anong alin
        magkano gaano dito diyan doon nandito nandiyan nandoon kumusta kamusta salamat
        maraming pasensya sige halika ingat ayaw ayoko kailangan puwede pwede pwedeng siguro
        yata daw nga muna ngayon kanina mamaya kahapon araw gabi umaga hapon tanghali buwan
        taon oras bahay trabaho bayad masarap maganda magandang pangit malaki maliit mainit
        malamig ulan kain kumain uminom tubig kanin tinapay gatas masakit gamot ospital nanay
        tatay kuya kaibigan sasakyan pamasahe sakay bumaba tindahan palengke presyo bumili
        naku teka sandali gutom busog pagod antok laging ngayong kayong akong siyang mong kong
        nating niyo nyo pano kelan musta sobrang medyo kahit tapos pagkatapos lahat dalawa
        tatlo unang makita sabihin gawin ginagawa ginawa tanong sagot tulong tulungan hanap
        hanapin uwi umuwi punta pumunta
        """,
    1.5: """
        sa ay kay ko mo ka yan yun oo wag ba din rin lang kasi pag ano ilan tara gusto baka
        pala bukas linggo pera libre kape lolo bili grabe sya cya ung lng nman tlga nako sobra
        isa bago nag mag alam sabi
        """,
    1.0: """
        na sina nina pa pero sino raw mura init ulam ate lola jeep kc dw dn rn san bat hay
        luma
        """,
    0.7: "si ni may para mahal kita kaya sana",
    0.5: "kami at",
    0.3: "o lagi balik",
    0.9: """
        bata babae lalaki tao bayan lungsod probinsya bansa mundo pamilya asawa anak kapatid
        magulang pinsan tito tita kaklase guro estudyante paaralan eskwela simbahan kalsada
        daan kotse barko eroplano tren dyip traysikel bintana pinto mesa upuan libro papel
        damit sapatos kulay pula puti itim berde asul dilaw mahaba maikli mataas mababa
        mabigat magaan matanda buhay patay puso ulo kamay paa mata tenga bibig ngipin buhok
        katawan dugo dagat bundok ilog gubat puno bulaklak dahon prutas bato lupa hangin
        langit bituin ulap salita kwento balita kanta larawan laro dala buksan isara kunin
        bigay sulat basa dinig tingin isip alala limot kilala aral lakad takbo upo tulog
        gising ligo luto hugas hiram tira panganak kasal mahirap madali mabilis mabagal
        malapit malayo tuyo malinis marumi laman mayaman uhaw madalas minsan bihira sigurado
        totoo halos sapat kulang pinaka bawat
        """,
})

# Vietnamese typed without its diacritics (khong, duoc, cam on).
_VI = _tiers({
    2.0: """
        khong duoc nhung nguoi cua minh roi nhieu tien chao nhe oi vay biet troi dep choi hom
        ngay viec voi mot nhu duong nuoc uong chua phai muon thich yeu chieu gio phut deu rat
        nhat ngon banh buyt vui buon lanh nong thoi khoe khoẻ xong nua chut hieu hoc truong
        benh thuoc
        """,
    1.5: """
        dc toi anh xin gi nay nao dau nha lam dang cai thi phe nen dem cung hon moi het pho
        bun xe hok zay dzay gap noi vien sot
        """,
    1.0: """
        em bao cam sao qua mai va cho trong sua ve den sang lai ong chu cau mua tra re met ak
        bn mk hem ui bac
        """,
    0.7: "ban",
    0.5: "chi com don hay co hai tai ca da ma tu con bo dat",
    0.3: "ko la di an on the o de me ba ng si",
    0.2: "do",
    0.0: "ah ạ vs uh",
})

# Malay against Indonesian: positive for Malay, negative for Indonesian. Spelling
# (kerana/karena, wang/uang, -iti/-itas), words (kereta/mobil, percuma/gratis, esok/besok)
# and chat particles (je, tak, kat / gak, sih, dong).
_MS_OVER_ID = _tiers({
    3.0: """
        nombor tak nak kat awak korang diorang dorang kerana sahaja bahawa iaitu mahu esok ialah
        pelbagai bahagian sebahagian jom percuma takde takpe takpa camne mcm jer baiki rosak
        teksi stesen kedai majlis kes mesyuarat ringgit encik cikgu pakcik makcik bilik tandas
        kasut seluar basikal motosikal kenderaan jambatan ubat sihat kesihatan pesakit
        jururawat selsema selepas manakala justeru pelancong lawatan melawat percutian
        pengangkutan syarikat kilang perniagaan pelaburan eksport projek tarikh minit peratus
        bilion cukai polis peguam parlimen parti antarabangsa jepun sepanyol eropah haiwan
        tasik muzium moden filem muzik televisyen telefon bimbit perisian akhbar sukan pelakon
        isteri jiran rakan kanak lelaki kahwin berkahwin sejuk jerebu tengahari sekejap kejap
        tengok cakap bercakap beritahu bagitahu hantar emel mesej seronok letih risau hairan
        kelakar bising lazat masin cili ais kuih faedah yuran peperiksaan tadika universiti
        pensyarah darjah lebuh trafik jem petrol keretapi isnin khamis jumaat ahad mac julai
        ogos disember xde xnak cmne camtu macamtu mcmtu pastu ckp tahniah syabas nape pehal
        awk biasiswa imigresen khabar baharu berbanding menerusi kaedah membolehkan mangsa
        kemalangan saintis pingat kejohanan jurulatih perlawanan majoriti kualiti aktiviti
        komuniti fakulti kapasiti identiti realiti prioriti minoriti kuantiti sekuriti borak
        sembang lepak paip
        """,
    -3.0: """
        keran gak nggak ngga enggak engga ngak banget bgt aja udah udh karena krn gue gw sih
        kok nih yuk loh lho emang kayak gitu gini gimana kapan bikin cuman doang mantul capek
        males sebel kesel bete kangen pacar cowok cewek cowo cewe mbak tante kakek tetangga
        istri uang rupiah ongkir ongkos biaya toko kantor kamar mobil sepeda taksi stasiun
        bandara ojek ojol angkot macet bensin telepon ponsel pulsa televisi koran olahraga
        medali dokter obat sehat kesehatan pasien puskesmas apotek pilek ngerti mikir coba
        kemarin besok bentar sore liburan dosen sma smp universitas pemerintah kabupaten
        kecamatan kelurahan provinsi polisi partai pemilu dpr internasional serikat prancis
        jepang spanyol eropa tiongkok hewan pohon danau berbagai bagian sebagian yaitu bahwa
        kecelakaan memungkinkan ilmuwan peneliti penelitian persen miliar derajat pajak utang
        perusahaan pabrik investasi ekspor impor proyek tanggal menit senin kamis jumat maret
        juli agustus desember sepatu celana sendok cangkir handuk jendela lemari kulkas kompor
        kasur cabai cabe lezat asin gorengan bakso martabak warteg ngopi nongkrong ngobrol
        ketemu nonton bilang ngomong khawatir kaget heran lucu berisik ganteng jelek beres
        rusak benerin gokil anjay gmn kpn bsa ajah beneran kuy lebaran nyari nunggu ngapain
        ngerjain dapet pengen pingin nyampe mending banyakin tolongin terusin barengan bareng
        ribet gampang
        """,
    2.5: """
        dah boleh tiada sikit macam je bas wang doktor faham fikir cuba kos pengarah petang
        hujung nampak penat pelik senyap sedap mee kot kut ape mendapati riba
        """,
    -2.5: """
        nomor
        bisa soalnya dong deh tuh keren seru galau rb gratis warung kuota situs musik perawat
        sesudah abis libur mahasiswa pengadilan yakni korban menemukan metode es aneh rame
        kabar bener trims duluan
        """,
    2.0: """
        terangkan
        ni tu betul cik hospital rawatan bermula semasa bercuti peniaga kerajaan itali budak
        emak ribut semalam agaknya nampaknya gembira lawak gaduh mamak bandar weh wei x blh
        lps tk mengikut maut belia kenduri mengulas walaweh
        """,
    -2.0: """
        berkomentar ga ayo toh ngantuk lintas film pelatih kejuaraan mengerti paham pikir
        mulai pekan siswa museum modern kuno terjadi juni kemeja piring enak jajan antar cemas
        sepi anjir sist klo cus makasih mau kerjaan sampe
        """,
    1.5: """
        menerangkan penerangan
        cuti puan mak mula lepas apabila walau bagaimanapun ramai perancis pokok abah mesti
        kena bimbang hutang pelajar kawasan tgk raya sape dkt kajian berlaku syok alamak lebat
        """,
    -1.5: """
        penjelasan
        deras gk saja kalo lo lu lelah bapak bu mas om motor tol hp setelah siang kuliah
        kampus ulangan kota liat kirim oke sip gan trus parah repot bingung
        """,
    -1.2: "kamu kalian",
    1.0: """
        jek la kereta kawan bagi negeri sesak kite mane dh dekat penyelidik cedera laman gerak
        best jemput tumpang tengah aiyo aiyoh
        """,
    -1.0: """
        cape teman pak bus pesawat ketika saat beasiswa desa pengacara soto kasih perbaiki bs
        ae kasihan mantan
        """,
    -0.7: "sudah",
    0.5: "pejabat gerai kt penyelidikan gila wah balik",
    -0.5: "lanjut gua kaya begitu begini bagaimana sebentar ujian ingin lg semoga",
    -0.4: "tidak",
    -0.3: "adalah",
    0.0: """
        tingkatan tambang sbb warga orang belanja aduh pakai dapat buat kerja jalan naik turun
        pulang tinggal lagi belum blm sampai terus dulu sama sama-sama moga sumpah asli serius
        mudah susah senang sedih takut marah malu keluarga saudara gaji harga murah mahal
        """,
})

# More of the same for the written register (news, notices, forms), where Malaysian and
# Indonesian standard vocabularies part ways: soalan/pertanyaan, maklumat/informasi,
# berjaya/berhasil, tentera/tentara, kedudukan/posisi, jawapan/jawaban.
_MS_OVER_ID_WRITTEN = _tiers({
    3.0: """
        sebarang soalan jawapan teruk tentera askar kerusi berbeza peribadi rahsia maklumat
        senarai sokongan kesilapan silap sentiasa setakat sesiapa jawatan kolej kelab kad
        bisnes berjaya sertai sedar tetamu katil kelajuan selesa beza betulkan matematik
        imej tajuk sila punca minda almari bumbung umpama terutamanya sebenar erti sekiranya
        kongsi peminat keganasan kawal selalunya fesyen semula rancangan rehat terlupa arahan
        zon menyokong mencuba kesemua fikiran tunjuk tumpuan sukar ketawa fikirkan dibenarkan
        pengurusan kedudukan kuasa membina mengawal menyertai perlukan pulak kegemaran
        sepatutnya perkataan perasan patut kejayaan bincang berjuta persembahan separuh
        sediakan memandu bermaksud elektrik pembedahan berkenaan bertukar bunyi tukar
        takkan peranan pemandu membenarkan popular terpaksa berhampiran sesetengah sijil
        barangan lesen mahupun memandangkan kerosakan mulakan perbezaan sempena akaun
        bekalan bergaduh berkongsi lakonan perkhidmatan talian tempoh perubatan bersetuju
        enjin makmal sempadan memulakan pusingan rasmi perkahwinan jenayah kawalan laluan
        amaran berkhidmat rasuah siasatan cabaran dikesan fizikal kecederaan kempen mahukan
        menguruskan percubaan berterusan kesedaran mengesan mestilah saiz setiausaha
        terselamat jurutera juruterbang macamana mengelakkan menyedari merosakkan pengganas
        penghantaran pengsan perlumbaan matlamat terkorban terowong pengerusi pengetua salji
        maruah atuk comel kacak inggeris
        """,
    2.5: """
        watak dihantar jadual jeneral rekod ayuh kod seterusnya awam kesan kumpulan
        """,
    2.0: """
        adakah bilangan lorong merancang kekal dibina amalan bil laju bapa dikira simpanan
        bina hadapan letak tolak tepi wujud curi tamat perpaduan permulaan ubah asas
        melayan selangor johor sarawak kelantan terengganu kedah pahang melaka rm
        """,
    1.5: """
        pakar isu pandai menaiki keselamatan benda harap sedia kuala lumpur sabah malaysia
        melayu daripada
        """,
    1.0: "turut sambutan dilahirkan terletak seketika mulanya mempunyai",
    -3.0: """
        akun fitur manajemen diskon dirilis triliun bakteri fisika rekor selengkapnya
        apartemen produsen sepakbola diproduksi diselenggarakan konsumen lowongan percobaan
        tabel turnamen silahkan desain berbasis cocok membutuhkan penasaran kanker populer
        resmi kendaraan matematika berpikir jadwal otomatis bisnis kebijakan mencoba asuransi
        butuh dibilang kinerja beda kartu karir kasus setidaknya wisata kecepatan menyadari
        perbedaan pikiran rekaman bupati dikarenakan fisik infeksi kampanye ketimbang listrik
        pendukung rp transportasi bioskop karyawan klub komentar korupsi properti publik
        standar tantangan karna lomba memulai merusak zona jembatan survei tombol kaos konser
        mendukung berhasil jawaban mayoritas resiko rute orangtua stadion istrinya mampir
        sinyal walikota kue kalimat memenangkan teroris makanya tentara judul dipakai lumayan
        penggemar pernikahan pertanyaan bercanda
        """,
    -2.5: """
        keuangan mencakup maupun referensi tipe gubernur temukan perangkat grup konten nyaman
        pensiun kondisi riset usai dampak justru maksimal pengobatan solusi lokal seleksi
        direktur keberhasilan kontak pelayanan dibangun kompetisi medis periode rekan kode
        peran sebaiknya spesial aktor dimulai kelompok kontrol menikah paket membahas
        perawatan sepertinya tas tes dikenal ditemukan informasi terkadang tersangka cokelat
        departemen pelatihan perilaku gedung layanan membangun terlihat tim militer padahal
        ternyata diduga kesempatan aturan peduli petugas ruangan posisi prestasi harusnya
        mirip mengunjungi merubah
        """,
    -2.0: """
        pangan konsumsi administrasi didukung sosok efek beragam ikuti jaman materi sekedar
        sobat terkait berencana dibanding meski studi sukses artinya berarti promo lolos
        pembuatan terdiri harus mengurangi nantinya tampaknya kegiatan berupa mengirim pria
        saran lingkungan mengungkapkan pengembangan sadar sejumlah tokoh seharusnya setempat
        bunda disebut jasa jaringan sekaligus silakan tercatat detik pelaku tarif anggaran
        berhubungan kewajiban pengusaha selanjutnya istirahat parkir daftar disini dimana
        menghubungi meskipun berangkat berisi lantai dki kpk
        """,
    -1.5: """
        konstruksi mandiri misalnya umumnya awalnya tampak pemilihan sebesar tersedia versi
        benar jawa jakarta bandung surabaya yogyakarta indonesia bogor semarang makassar
        """,
    -1.0: """
        aplikasi tersebut biasanya namun terbatas pembangunan efektif apakah luas bali
        """,
})
for _word, _weight in _MS_OVER_ID_WRITTEN.items():
    _MS_OVER_ID.setdefault(_word, _weight)

# Two-word expressions that tell more than their words (kereta api is a train in both).
_MS_OVER_ID_PAIRS: dict[tuple[str, str], float] = {
    ('kereta', 'api'): -2.0,
    ('rumah', 'sakit'): -3.0,
    ('kamar', 'mandi'): -1.0,
    ('sepak', 'bola'): -3.0,
    ('bola', 'sepak'): 3.0,
    ('kapal', 'terbang'): 3.0,
    ('lapangan', 'terbang'): 3.0,
    ('orang', 'tua'): -1.5,
    ('ibu', 'bapa'): 3.0,
    ('pasar', 'raya'): 2.0,
    ('sampai', 'jumpa'): -2.0,
    ('jumpa', 'lagi'): 1.5,
    ('akhir', 'pekan'): -1.0,
    ('hujung', 'minggu'): 1.0,
    ('tahun', 'lepas'): 1.0,
    ('minggu', 'lepas'): 1.0,
    ('bulan', 'lepas'): 1.0,
    ('lagi', 'di'): -2.0,
    ('lagi', 'apa'): -2.0,
    ('lagi', 'sibuk'): -2.0,
    ('lagi', 'makan'): -1.5,
    ('lagi', 'ngapain'): -1.0,
    ('teh', 'tarik'): 3.0,
    ('nasi', 'lemak'): 3.0,
    ('roti', 'canai'): 3.0,
    ('teh', 'ais'): 3.0,
    ('es', 'teh'): -1.0,
    ('jam', 'berapa'): -1.0,
    ('tengah', 'hari'): 1.0,
}

# Laughter, acknowledgements and greetings every language uses: they tell nothing.
_NEUTRAL_WORDS = """
    ok okay okey okie k kk haha hahaha hehe hihi huhu lol lmao rofl xd hmm hm mm ah eh oh uh um
    aw yay wow omg hi hello bye d p
    """.split()

# Words of the contrast list that are English as well.
_LOOKALIKES = frozenset("""
    ae best bs bus cus dh es film gan gerak hospital ia jun kos kt lps mac min modern museum om
    sbb sip tk tol x
    """.split())

# Words of the Malay/Indonesian contrast list are Malay-family words as well, unless English
# or Filipino has them too (a bus is a bus in both; "sila" is Filipino for "they").
for _word in _MS_OVER_ID:
    if (len(_word) > 2 and _word not in _MALAY and _word not in _EN and _word not in _TL
            and _word not in _LOOKALIKES):
        _MALAY[_word] = 1.0
del _word

_NEUTRAL = frozenset(_NEUTRAL_WORDS)
_LAUGHTER = re.compile(
    r"(?:ha|he|hi|ho|hu|wk|kw|xa|ja|ke|ks){2,}h?|a*h+a+[ha]*|x+[dp]+|k+|m+|h+m+|e+h+")
# Letters only Vietnamese uses (NFC): ă đ ơ ư and the vowels with a tone mark no other
# language puts on them.
_VIETNAMESE = frozenset("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĩũ")

# How the evidence adds up: log-odds weights, chosen on the project's samples and checked on
# formal text written apart from them (the numbers are not sharp: nearby values score alike).
_MODEL_WEIGHT = 0.5  # times the log of the n-gram model's probability, up to 3 words,
_MODEL_WEIGHT_PER_WORD = 0.05  # plus this for each further word,
_MODEL_WEIGHT_MAX = 1.0  # up to this
_MS_ID_MODEL_WEIGHT = 0.5  # times the model's log-odds of Malay over Indonesian
_SEA_WORD_WEIGHT = 1.75  # a Filipino/Malay word outweighs an English one in code-mixed chat
_OTHER_PENALTY = 3.0  # es/fr/de/pt/it/nl need clear evidence in short text,
_OTHER_PENALTY_PER_WORD = 0.25  # less with each word past 3,
_OTHER_PENALTY_MIN = 1.0  # down to this
_VIETNAMESE_LETTERS = 4.0  # per word with a letter only Vietnamese uses
_PREFER_BIAS = 1.0  # log-odds towards the preferred one of ms/id


# ------------------------------------------------------------------------------------ model

_model: Any = None
_model_lock = threading.Lock()


def _load_model() -> Any:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(SEA_LATIN + OTHER_LATIN))
                _model = identifier
    return _model


def warm_up() -> None:
    """Load the Latin-script model now rather than on the first message that needs it."""
    _load_model()


def _model_probabilities(text: str) -> dict[str, float]:
    return {language: float(p) for language, p in _load_model().rank(text)}


# ------------------------------------------------------------------------------ Latin text

def _lookup(table: dict[str, float], word: str) -> float:
    weight = table.get(word)
    if weight is not None:
        return weight
    if "-" in word:
        parts = word.split("-")
        if parts[0] == parts[-1]:  # reduplication: sama-sama, kanak-kanak
            return table.get(parts[0], 0.0)
        return max(table.get(part, 0.0) for part in parts)
    return 0.0


_MALAY_PREFIX = re.compile(
    r"(?:meng|meny|mem|men|me|ber|ter|per|peng|peny|pem|pen|di|ke|se)[a-z]{3,}")
_MALAY_SUFFIX = re.compile(r"[a-z]{3,}(?:kan|nya|lah|kah)")
_TL_PREFIX = re.compile(r"(?:mag|nag|pag|ipag|nakaka|makaka|naka|maka|pinag|ika)-?[a-z]{3,}")


def _affixes(word: str) -> tuple[float, float]:
    """Evidence from the shape of a word no list knows: (Malay family, Filipino)."""
    malay = 0.0
    if _MALAY_SUFFIX.fullmatch(word):
        malay += 1.0
    if _MALAY_PREFIX.fullmatch(word) and len(word) > 6:
        malay += 0.7
    if word.startswith("ke") and word.endswith("an") and len(word) > 6:
        malay += 0.5
    filipino = 0.7 if _TL_PREFIX.fullmatch(word) else 0.0
    return malay, filipino


def _words(letters: str) -> list[str]:
    words = []
    for match in _WORD.finditer(letters.lower()):
        word = match.group().replace("’", "'")
        if word in _NEUTRAL or _LAUGHTER.fullmatch(word):
            continue
        words.append(word)
    return words


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {key: math.exp(value - top) for key, value in scores.items()}
    total = sum(exp.values())
    return {key: value / total for key, value in exp.items()}


def _detect_latin(words: list[str], prefer: str | None) -> Detection:
    model = _model_probabilities(" ".join(words))

    def log_p(*languages: str) -> float:
        return math.log(max(sum(model.get(language, 0.0) for language in languages), 1e-4))

    lexicon = {"en": 0.0, "malay": 0.0, "tl": 0.0, "vi": 0.0}
    vietnamese_words = 0
    ms_over_id = 0.0
    markers = 0
    malay_words = indonesian_words = 0
    for i, word in enumerate(words):
        known = [_lookup(table, word) for table in (_EN, _MALAY, _TL, _VI)]
        if not any(known):
            malay, filipino = _affixes(word)
            known[1] += malay
            known[2] += filipino
        lexicon["en"] += known[0]
        lexicon["malay"] += known[1]
        lexicon["tl"] += known[2]
        lexicon["vi"] += known[3]
        if any(char in _VIETNAMESE for char in word):
            vietnamese_words += 1
        contrast = _lookup(_MS_OVER_ID, word)
        if not contrast and len(word) > 6:  # universiti/universitas, kualiti/kualitas
            if word.endswith("iti"):
                contrast = 2.0
            elif word.endswith("itas"):
                contrast = -2.0
        if i + 1 < len(words):
            contrast += _MS_OVER_ID_PAIRS.get((word, words[i + 1]), 0.0)
        if word == "sangat" and i > 0:  # "mahal sangat": Malay puts it after the adjective
            contrast += 1.5
        ms_over_id += contrast
        if contrast >= 1.5:
            malay_words += 1
        elif contrast <= -1.5:
            indonesian_words += 1
    markers = malay_words - indonesian_words

    # The n-gram model earns trust with length; the word lists matter most for short text.
    extra_words = max(0, len(words) - 3)
    weight = min(_MODEL_WEIGHT + _MODEL_WEIGHT_PER_WORD * extra_words, _MODEL_WEIGHT_MAX)
    scores = {
        "en": weight * log_p("en") + lexicon["en"],
        "tl": weight * log_p("tl") + _SEA_WORD_WEIGHT * lexicon["tl"],
        "vi": weight * log_p("vi") + lexicon["vi"] + _VIETNAMESE_LETTERS * vietnamese_words,
        "malay": weight * log_p("ms", "id") + _SEA_WORD_WEIGHT * lexicon["malay"],
    }
    penalty = max(_OTHER_PENALTY - _OTHER_PENALTY_PER_WORD * extra_words, _OTHER_PENALTY_MIN)
    for language in OTHER_LATIN:
        scores[language] = weight * log_p(language) - penalty
    family = _softmax(scores)

    odds = ms_over_id + _MS_ID_MODEL_WEIGHT * (log_p("ms") - log_p("id"))
    # With nothing distinctive of the other side, the preferred one wins; otherwise the
    # preference only tips the balance.
    if prefer == "ms":
        odds = max(odds, 0.0) + _PREFER_BIAS if not indonesian_words else odds + _PREFER_BIAS
    elif prefer == "id":
        odds = min(odds, 0.0) - _PREFER_BIAS if not malay_words else odds - _PREFER_BIAS
    p_ms = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, odds))))
    probabilities = {language: p for language, p in family.items() if language != "malay"}
    probabilities["ms"] = family["malay"] * p_ms
    probabilities["id"] = family["malay"] * (1.0 - p_ms)

    language = max(probabilities, key=lambda key: (probabilities[key], key == prefer))
    # One word can't be sure of much, two a little more.
    confidence = probabilities[language] * min(1.0, 0.55 + 0.15 * len(words))
    if language == "ms":
        signed = markers
    elif language == "id":
        signed = -markers
    else:
        signed = 0
    return Detection(language, round(confidence, 4), "model", signed)


# ------------------------------------------------------------------------------- public API

def detect(text: str, *, prefer: str | None = None) -> Detection:
    """The language of `text`, or `Detection(None, 0.0)` when it has nothing to tell.

    `prefer` ("ms" or "id") breaks a tie between Malay and Indonesian, which share most of
    their words: pass the conversation's language or the platform's hint.
    """
    letters = clean(text)
    if not letters:
        return NOTHING
    weights: dict[str, float] = {}
    for char in letters:
        if char == " ":
            continue
        script = _script(char)
        if script is None:
            if unicodedata.category(char)[0] == "M":
                continue  # a mark on the previous letter
            script = "other"
        weights[script] = weights.get(script, 0.0) + _SCRIPT_WEIGHT.get(script, 1.0)
    if not weights:
        return NOTHING
    if "kana" in weights and "han" in weights:  # Japanese writes Han with kana
        weights["kana"] += weights.pop("han")
    script = max(weights, key=lambda key: weights[key])
    if script != "latin":
        if script == "other":
            return NOTHING
        share = weights[script] / sum(weights.values())
        confidence = 1.0 if share >= 0.8 else 0.4 + 0.75 * share
        return Detection(_script_language(script, letters), round(confidence, 4), "script")
    words = _words(" ".join(word for word in letters.split()
                            if all(_script(c) in ("latin", None) for c in word)))
    if not words:
        return NOTHING
    return _detect_latin(words, prefer if prefer in ("ms", "id") else None)


def is_other_language(text: str, expected: str) -> bool:
    """True when `text` is confidently in a language other than `expected`: the check for a
    model's answer. Malay read as Indonesian (or the reverse) counts only with
    `MS_ID_SWITCH_MARKERS` distinctive words, since the two share most of their vocabulary."""
    expected = normalise(expected) or expected
    detection = detect(text, prefer=expected)
    if (detection.language is None or detection.language == expected
            or detection.confidence < CONFIDENT):
        return False
    if {detection.language, expected} == {"ms", "id"}:
        return detection.markers >= MS_ID_SWITCH_MARKERS
    return True


_ALIASES = {
    "fil": "tl", "tgl": "tl", "in": "id", "ind": "id", "msa": "ms", "may": "ms", "zsm": "ms",
    "zlm": "ms", "eng": "en", "tha": "th", "vie": "vi", "tam": "ta", "mya": "my", "bur": "my",
    "khm": "km", "lao": "lo", "zho": "zh", "chi": "zh", "cmn": "zh", "yue": "zh", "iw": "he",
    "ji": "yi", "jw": "jv", "nb": "no", "nn": "no",
}


def normalise(code: str | None) -> str | None:
    """'en-US' -> 'en', 'zh-Hant' -> 'zh', 'fil' -> 'tl', 'in' -> 'id'; None or '' -> None."""
    if not code or not code.strip():
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return _ALIASES.get(base, base) or None


def choose_reply_language(text: str, *, current: str | None, hint: str | None,
                          default: str) -> str:
    """The language to answer `text` in.

    - Nothing to detect (no letters, only emoji, a link, "haha"): keep `current`, else the
      platform's `hint`, else `default`.
    - First contact (`current` is None): the detection, unless it is weaker than
      `FIRST_CONTACT` and the platform gave a hint.
    - Later: the conversation's language changes only on a detection of at least `CONFIDENT`
      (a short "ok bro" never moves it), and between Malay and Indonesian only with
      `MS_ID_SWITCH_MARKERS` words that are distinctive of the new one.
    - Between Malay and Indonesian an ambiguous text follows the conversation's language,
      else the hint.

    Returns an ISO 639-1 code: one of `bot.texts.SUPPORTED_LANGUAGES` when the language is
    one of them, another code otherwise (the caller's texts fall back to English for it).
    """
    current = normalise(current)
    hinted = normalise(hint)
    prefer = next((code for code in (current, hinted) if code in ("ms", "id")), None)
    detection = detect(text, prefer=prefer)
    if detection.language is None:
        return current or hinted or default
    if current is None:
        if detection.confidence >= FIRST_CONTACT or not hinted:
            return detection.language
        return hinted
    if detection.language == current or detection.confidence < CONFIDENT:
        return current
    if {detection.language, current} == {"ms", "id"}:
        if detection.markers < MS_ID_SWITCH_MARKERS:
            return current
    return detection.language
