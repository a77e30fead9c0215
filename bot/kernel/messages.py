"""Platform-neutral types that cross Celery as JSON.

A message carries an address (`ConversationKey`), never a client object. Whatever an adapter
needs to answer later (a LINE reply token, a Telegram message to reply to) travels in
`reply_context`: one frozen type per platform (`ReplyContext`, discriminated by `platform`),
written and read only by that platform's adapter, carried unread by everything else.
"""

from __future__ import annotations

import enum
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.kernel.languages import normalise_language


class Platform(enum.StrEnum):
    TELEGRAM = "telegram"
    LINE = "line"
    WHATSAPP = "whatsapp"
    #: `sealion-bot chat`: a conversation in the terminal, no platform account needed.
    CONSOLE = "console"
    #: The /chat page the API serves when WEB_CHAT=true.
    WEB = "web"

    @property
    def local(self) -> bool:
        """A channel of our own (no webhook, no platform account)."""
        return self in (Platform.CONSOLE, Platform.WEB)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConversationKey(_Frozen):
    """The address of a conversation: one chat of one bot on one platform.

    In a private chat `user_id` is the person; in a group the conversation is the whole group
    (`user_id` is empty) so that everyone in it shares one history.
    """

    platform: Platform
    bot_id: str
    chat_id: str
    user_id: str = ""

    def as_path(self) -> str:
        """A stable, readable string form, used as the Redis key prefix."""
        return f"{self.platform.value}:{self.bot_id}:{self.chat_id}:{self.user_id}"

    def log_id(self) -> str:
        """How logs name this conversation: the platform and a keyed hash of the rest, stable
        within a deployment (bot.kernel.logs.pseudonym), never a phone number or account id."""
        from bot.kernel.logs import pseudonym

        return f"{self.platform.value}:{pseudonym(self.as_path())}"


class TelegramContext(_Frozen):
    """What the Telegram adapter answers with: the chat, the message, a forum topic."""

    platform: Literal[Platform.TELEGRAM] = Platform.TELEGRAM
    chat_id: int
    message_id: int
    private: bool = True
    thread_id: int | None = None


class LineContext(_Frozen):
    """What the LINE adapter answers with: who to push to, and a reply token while fresh."""

    platform: Literal[Platform.LINE] = Platform.LINE
    to: str
    private: bool = True
    reply_token: str | None = None
    reply_token_expires_at: float = 0.0
    #: The answered message's markAsReadToken: spent once the answer is sent.
    mark_as_read_token: str | None = None


class WhatsAppContext(_Frozen):
    """What the WhatsApp adapter answers with: the recipient and the message (read receipt)."""

    platform: Literal[Platform.WHATSAPP] = Platform.WHATSAPP
    #: The phone number; None when the person hides it (a username): then `user_id` is used.
    to: str | None = None
    message_id: str
    #: The business-scoped user id Meta sends beside (or instead of) the phone number.
    user_id: str | None = None

    @model_validator(mode="after")
    def _addressed(self) -> WhatsAppContext:
        if not self.to and not self.user_id:
            raise ValueError("a WhatsApp reply needs a phone number or a business-scoped id")
        return self


class LocalContext(_Frozen):
    """The local channels (the terminal, the web chat): always a private conversation."""

    platform: Literal[Platform.CONSOLE, Platform.WEB]
    private: bool = True


#: What an adapter needs to answer a message later; one type per platform.
ReplyContext = Annotated[TelegramContext | LineContext | WhatsAppContext | LocalContext,
                         Field(discriminator="platform")]


class AttachmentKind(enum.StrEnum):
    IMAGE = "image"
    #: A voice note or audio clip, transcribed before the model sees the turn.
    AUDIO = "audio"
    #: A file sent in chat (PDF, DOCX, text): read into the turn, scanned pages as images.
    DOCUMENT = "document"


#: The files a person may send in chat that are read (`workers.documents.read_for_chat`): by
#: declared type, or by the file name's extension where the type says nothing useful.
DOCUMENT_TYPES = frozenset({
    "application/pdf", "application/x-pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain", "text/markdown", "text/x-markdown", "text/html"})
DOCUMENT_EXTENSIONS = frozenset({".pdf", ".docx", ".txt", ".text", ".md", ".markdown", ".html",
                                 ".htm"})


def readable_document(mime_type: str | None, name: str | None) -> bool:
    """Whether a file sent in chat is one the bot reads (else the "unsupported" notice, and it
    is never downloaded)."""
    declared = (mime_type or "").split(";")[0].strip().lower()
    if declared in DOCUMENT_TYPES:
        return True
    suffix = "." + name.rsplit(".", 1)[-1].lower() if name and "." in name else ""
    return suffix in DOCUMENT_EXTENSIONS


class Attachment(_Frozen):
    """A reference to media the adapter can fetch later (Telegram file_id, LINE message id)."""

    kind: AttachmentKind = AttachmentKind.IMAGE
    ref: str
    mime_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    #: Audio: the length the platform declared, in seconds (None when it says nothing).
    duration: float | None = None
    #: A document: the file name the sender gave it (shown to the model, never fetched by).
    name: str | None = Field(default=None, max_length=255)


class MessageKind(enum.StrEnum):
    #: Text and/or images for the model.
    CHAT = "chat"
    #: Something we cannot read (a sticker, voice, a location): answered with a short notice.
    UNSUPPORTED = "unsupported"
    #: Someone started talking to the bot or added it to a group: answered with a greeting.
    GREETING = "greeting"
    #: The platform says one person's ids changed (WhatsApp `user_changed_user_id`): the accept
    #: path links them (storage/identities.py); never queued, never answered.
    IDENTITY = "identity"
    #: A 👍/👎 on an answer (a button, a reaction; `InboundMessage.rating`): stored against
    #: the answer by an I/O worker (`workers.tasks.record_rating`); never a turn, never answered.
    RATING = "rating"


class RatingSource(enum.StrEnum):
    BUTTON = "button"
    REACTION = "reaction"


#: The data a feedback button carries: "fb:+1:<turn id>" or "fb:-1:<turn id>" (Telegram's
#: callback_data, LINE's postback data, WhatsApp's button reply id).
FEEDBACK_PREFIX = "fb:"


def feedback_data(value: int, turn_id: str) -> str:
    return f"{FEEDBACK_PREFIX}{value:+d}:{turn_id}"


def read_feedback_data(data: str | None) -> tuple[int, str] | None:
    """(value, turn id) of a feedback button's data; None for anything else."""
    if not data or not data.startswith(FEEDBACK_PREFIX):
        return None
    value, _, turn_id = data[len(FEEDBACK_PREFIX):].partition(":")
    if value not in ("+1", "-1") or not turn_id or len(turn_id) > 64:
        return None
    return int(value), turn_id


class Rating(_Frozen):
    """A person's rating of an answer, as a webhook carried it."""

    #: +1 (👍), -1 (👎), 0: a reaction was removed (the rating goes).
    value: int = Field(ge=-1, le=1)
    source: RatingSource
    #: A button's: the turn whose answer it sat under.
    turn_id: str | None = None
    #: A reaction's (and a Telegram button's): the platform id of the message rated.
    message_id: str | None = None
    #: Telegram: the callback query to answer (answerCallbackQuery).
    callback_id: str | None = None


class InboundMessage(_Frozen):
    key: ConversationKey
    #: The platform's id of the event, used to drop redeliveries (Telegram update_id).
    event_id: str
    #: The platform's id of the message itself.
    message_id: str
    kind: MessageKind = MessageKind.CHAT
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    #: Messages sharing an album id (photos sent together) become one turn.
    album_id: str | None = None
    #: The platform's idea of the user's language (Telegram `language_code`, a browser's
    #: Accept-Language), if any: one of `bot.kernel.languages.SUPPORTED_LANGUAGES` ('id-ID' is 'id').
    #: The sender chooses it, and it becomes a stored reply language and a metrics label, so
    #: any other code is dropped when the message is parsed.
    language_hint: str | None = None
    user_name: str | None = None
    #: Who wrote it: the platform's id of the sender (Telegram user id, LINE userId, WhatsApp
    #: wa_id), also in groups, where `key.user_id` is empty. Deleting a person finds their
    #: group messages by it.
    sender_id: str = ""
    sent_at: float = Field(default_factory=time.time)
    received_at: float = Field(default_factory=time.time)
    reply_context: ReplyContext | None = None
    #: Every id of the sender this event carried, the preferred first (WhatsApp: BSUID, parent
    #: BSUID, phone); empty where a platform has one id. The accept path keys the message by the
    #: person's canonical id (storage/identities.py).
    identities: tuple[str, ...] = ()
    #: An IDENTITY message: the ids the person had before (linked to `identities`).
    previous_identities: tuple[str, ...] = ()
    #: Its sender's rate-limit token was spent before it was accepted (the web chat pays before
    #: it stores a photo): the turn's screen spends none for it.
    rate_checked: bool = False
    #: A RATING message: the rating.
    rating: Rating | None = None

    @field_validator("language_hint")
    @classmethod
    def _supported_language(cls, code: str | None) -> str | None:
        return normalise_language(code)


class Reply(_Frozen):
    """Everything the bot says for one turn, sent in order: its own notices, then the answer."""

    key: ConversationKey
    #: The platform message id being answered (the last message of the turn).
    in_reply_to: str
    language: str
    #: Texts the bot wrote itself (a greeting, an apology): sent as plain text.
    notices: tuple[str, ...] = ()
    #: The model's answer, in Markdown; empty when there is none.
    text: str = ""
    reply_context: ReplyContext | None = None
    #: The turn id the 👍/👎 buttons under the answer carry (FEEDBACK_BUTTONS); None: none.
    feedback: str | None = None
