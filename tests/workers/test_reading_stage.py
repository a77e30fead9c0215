"""The reading stage (#22, `workers.turn.reading`) and whole turns with a file: its text and its
scanned pages reach the model's request, stay in the history for the next question, and every
file that cannot be read gets a short note in the person's language while the turn goes on.

Unit tier: Redis is the in-memory twin, and the decode sandbox runs its function in this process
(the real sandbox's processes are the e2e tests' and tests/security/test_decoder_budgets.py's).
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import MediaError, MediaTooLarge
from adapters.fetch import HostRefused
from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    Platform,
    TelegramContext,
)
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from tests.conftest import new_chat_id
from tests.helpers.documents import docx_file, encrypted_pdf, scanned_pdf, text_pdf
from tests.helpers.turn_world import TurnWorld
from tests.helpers.twins import twin_redis
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.protocol import Documents, Grounding, KnowledgeMode, Turn, TurnPlan
from workers.turn import assemble
from workers.turn.reading import CUT_MARK, Reading

PAGES = ["The clinic opens at eight in the morning on weekdays.",
         "Dental care costs 300 baht a visit, paid at the counter."]


class InlineSandbox:
    """The decode sandbox's contract, run in this process (no processes in the unit tier)."""

    def run(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


class FileAdapter(RecordingAdapter):
    """A recording adapter that serves files by ref (an exception: raised instead)."""

    def __init__(self, settings, files: dict) -> None:
        super().__init__(settings)
        self.files = files
        self.fetched: list[tuple[str, int | None]] = []

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        self.fetched.append((ref, size))
        found = self.files[ref]
        if isinstance(found, Exception):
            raise found
        return found


def key() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)


def document(ref: str, name: str | None = None, mime: str | None = None) -> Attachment:
    return Attachment(kind=AttachmentKind.DOCUMENT, ref=ref, name=name, mime_type=mime)


@pytest.fixture()
def reading():
    client = twin_redis()
    history = RedisHistory(client, ttl=600, max_turns=20)
    loop = asyncio.new_event_loop()
    from bot.kernel.settings import Settings

    adapter = FileAdapter(Settings(), {})

    def make(files: dict, **limits) -> Reading:
        adapter.files = files
        options = dict(max_pages=5, max_tokens=1500, max_image_pixels=1024 * 1024,
                       max_bytes=20 * 1024 * 1024) | limits
        return Reading(**options, adapters=lambda platform: adapter,
                       run=loop.run_until_complete, history=history,
                       sandbox=InlineSandbox())

    yield make, history, adapter
    loop.close()
    client.close()


def plan(*attachments: Attachment, language: str = "en", words: str = "") -> TurnPlan:
    return TurnPlan(turn_id="t1", key=key(), language=language, user_text=words,
                    attachments=attachments)


def test_a_text_pdf_becomes_the_turns_text_headed_by_its_name(reading):
    make, _, adapter = reading
    read = make({"d1": text_pdf(PAGES)})
    documents, notices = read.read(plan(document("d1", "klinik.pdf", "application/pdf"),
                                        Attachment(ref="photo-1")))
    assert notices == () and documents.image_ids == ()
    assert documents.text == ('[file "klinik.pdf", 2 pages]\n'
                              f"[page 1] {PAGES[0]}\n\n[page 2] {PAGES[1]}")
    assert documents.mentions == ('[file "klinik.pdf", 2 pages]',)
    assert adapter.fetched == [("d1", None)]  # the photo is the media stage's


def test_scanned_pages_are_stored_like_photos(reading):
    make, history, _ = reading
    read = make({"scan": scanned_pdf(pages=3)}, max_pages=2)
    turn_plan = plan(document("scan", "surat.pdf"), language="ms")
    documents, notices = read.read(turn_plan)
    assert len(documents.image_ids) == 2 and len(documents.thumbnail_ids) == 2
    assert all(history.image(turn_plan.key, i).startswith(b"\xff\xd8")
               for i in documents.image_ids)
    assert "[scanned pages, as images: 1, 2]" in documents.text and CUT_MARK in documents.text
    assert notices == (text(Text.DOCUMENT_CUT, "ms"),)


def test_a_long_document_is_cut_to_its_tokens_with_a_note(reading):
    make, _, _ = reading
    words = " ".join(f"perkataan{i}" for i in range(2000))
    read = make({"long": words.encode()}, max_tokens=100)
    documents, notices = read.read(plan(document("long", "nota.txt"), language="id"))
    body = documents.text.split("\n", 1)[1]
    assert body.endswith(CUT_MARK) and len(body) - len(CUT_MARK) - 1 <= 400
    assert notices == (text(Text.DOCUMENT_CUT, "id"),)


@pytest.mark.parametrize(("found", "expected"), [
    (encrypted_pdf(), (Text.DOCUMENT_ENCRYPTED, {})),
    (b"%PDF-1.7 broken beyond repair", (Text.DOCUMENT_UNREADABLE, {})),
    (MediaTooLarge("over", 20 * 1024 * 1024), (Text.FILE_TOO_LARGE, {"limit_mb": 20})),
    (HostRefused("not an allowed host"), (Text.DOCUMENT_UNREADABLE, {})),
    (MediaError("HTTP 404"), (Text.DOCUMENT_UNREADABLE, {})),
])
def test_a_file_that_cannot_be_read_gets_a_note_and_the_others_are_read(reading, found,
                                                                         expected):
    make, _, _ = reading
    read = make({"bad": found, "good": docx_file("T", [("Hours", ["We open at eight."])])})
    documents, notices = read.read(plan(document("bad", "a.pdf"), document("good", "b.docx"),
                                        language="th"))
    wanted, fields = expected
    assert notices == (text(wanted, "th", **fields),)
    assert documents.text == '[file "b.docx"]\n## Hours\n\nWe open at eight.'


def test_an_oversized_file_is_refused_by_its_bytes(reading):
    make, _, _ = reading
    read = make({"big": text_pdf(PAGES)}, max_bytes=200)
    _, notices = read.read(plan(document("big", "big.pdf"), language="vi"))
    assert notices == (text(Text.FILE_TOO_LARGE, "vi", limit_mb=0),)


# ---------------------------------------------------------------- whole turns
@pytest.fixture()
def world(tmp_path):
    made = TurnWorld(None, tmp_path)
    yield made
    made.close()


def service_with_files(world: TurnWorld, files: dict, *answers: str):
    adapter = FileAdapter(world.settings, files)
    engine = ScriptedEngine(*answers)
    service = assemble(world.settings, store=world.store,
                       history=RedisHistory(world.client, ttl=600, max_turns=20),
                       conversation_log=world.log, metrics=world.metrics,
                       adapters=lambda platform: adapter, engine=lambda: engine,
                       run=asyncio.new_event_loop().run_until_complete,
                       leases=LeaseKeeper(world.store, max_hold_seconds=60),
                       sandbox=InlineSandbox())
    return service, engine, adapter


def send(world: TurnWorld, conversation: ConversationKey, words: str = "",
         *attachments: Attachment) -> None:
    number = str(new_chat_id())
    world.accept(InboundMessage(
        key=conversation, event_id=f"e{number}", message_id=number, text=words,
        attachments=attachments, language_hint="en",
        reply_context=TelegramContext(chat_id=int(conversation.chat_id),
                                      message_id=int(number))))


def test_a_pdf_reaches_the_model_and_the_next_question_still_sees_it(world):
    service, engine, adapter = service_with_files(
        world, {"d1": text_pdf(PAGES)}, "It is the clinic's handbook.", "Page 2 is on fees.")
    conversation = key()
    send(world, conversation, "", document("d1", "klinik.pdf", "application/pdf"))
    world.turn(service, conversation)
    [first] = engine.requests
    assert f"[page 2] {PAGES[1]}" in first.turns[-1].text and not first.turns[-1].images

    send(world, conversation, "What does page 2 say?")
    world.turn(service, conversation)
    second = engine.requests[1]
    assert [t.role for t in second.turns] == ["user", "assistant", "user"]
    assert f"[page 2] {PAGES[1]}" in second.turns[0].text
    assert second.turns[-1].text == "What does page 2 say?"
    assert adapter.sent == ["It is the clinic's handbook.", "Page 2 is on fees."]
    assert len(adapter.fetched) == 1  # read once; the history keeps it


def test_a_scan_reaches_the_model_as_images_and_stays_in_the_history(world):
    service, engine, _ = service_with_files(
        world, {"scan": scanned_pdf(pages=4)}, "A letter.", "It says hello.")
    conversation = key()
    send(world, conversation, "What is this?", document("scan", "surat.pdf"))
    world.turn(service, conversation)
    [first] = engine.requests
    assert len(first.turns[-1].images) == 4  # all of this turn's pages, past the 3 of history
    assert all(image.startswith(b"\xff\xd8") for image in first.turns[-1].images)
    assert first.turns[-1].text.startswith("What is this?\n\n[file \"surat.pdf\", 4 pages]")

    send(world, conversation, "And page 2?")
    world.turn(service, conversation)
    earlier = engine.requests[1].turns[0]
    assert "[scanned pages, as images: 1, 2, 3, 4]" in earlier.text and earlier.images


def test_an_unreadable_file_is_noted_and_the_words_are_answered(world):
    service, engine, adapter = service_with_files(world, {"enc": encrypted_pdf()},
                                                  "Here is my answer.")
    conversation = key()
    send(world, conversation, "Please check this report", document("enc", "report.pdf"))
    world.turn(service, conversation)
    assert adapter.sent == [text(Text.DOCUMENT_ENCRYPTED, "en"), "Here is my answer."]
    assert engine.requests[0].turns[-1].text == "Please check this report"


def test_a_file_alone_that_cannot_be_read_asks_the_model_nothing(world):
    service, engine, adapter = service_with_files(world, {"bad": b"\x00\x01 binary"})
    conversation = key()
    send(world, conversation, "", document("bad", "notes.txt"))
    world.turn(service, conversation)
    assert adapter.sent == [text(Text.DOCUMENT_UNREADABLE, "en")] and engine.requests == []


def test_strict_modes_decline_leaves_a_file_to_be_read():
    """Strict knowledge mode declines a question its passages do not answer, unless the person
    brought something to read, as with a photo: then the model reads it."""
    declined = Grounding(mode=KnowledgeMode.STRICT, declined=True)
    question = plan(words="What does this letter say?")
    assert not Turn(plan=question, grounding=declined).needs_model
    assert Turn(plan=question, grounding=declined,
                documents=Documents(text='[file "a.pdf", 1 pages]\n[page 1] Dear Siti')
                ).needs_model
    assert Turn(plan=question, grounding=declined,
                documents=Documents(image_ids=("page-1",))).needs_model
