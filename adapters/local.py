"""Local channels: the terminal (`sealion-bot chat`) and the /chat page, as real adapters.

A local channel has no platform server, so its "platform" is a mailbox in Redis
(`storage.mailbox.LocalMailbox`, which the adapter is given as a `Mailbox`):

    client (terminal, browser)                         worker (the same pipeline as Telegram)
    LocalMailbox.upload(photo) -> upload id   ──▶     fetch_media(upload id)
    parse(LocalMessage JSON) -> InboundMessage ──▶    accept (dedupe, pending list, queue)
    LocalMailbox.read(key, after) ◀──────────────     send(reply): one event per part, then "end"

Events on a conversation's outbox stream (all values strings):

    {"type": "message", "text": ..., "formatted": "1"|"0", "in_reply_to": message id}
    {"type": "typing"}
    {"type": "end", "in_reply_to": message id}      the reply to that message is complete

The delivery log covers the "end" marker too (index = number of parts), so a retried send
adds nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import ClassVar, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import (
    BaseAdapter,
    DeliveryLog,
    MediaError,
    MediaTooLarge,
    PayloadError,
    SignatureError,
    register,
)
from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    LocalContext,
    MessageKind,
    Platform,
    Reply,
    ReplyContext,
)
from bot.kernel.settings import Settings

#: The bot id of every local conversation (there is no platform account).
LOCAL_BOT_ID = "local"
#: Images per local message.
MAX_IMAGES = 10
#: Characters per local message.
MAX_TEXT = 16_000


class LocalImage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str = Field(min_length=1, max_length=64)
    mime_type: str | None = Field(default=None, max_length=100)
    size: int | None = Field(default=None, ge=0)


class LocalDocument(BaseModel):
    """A file sent to be read (PDF, Word, text): `bot.kernel.messages.readable_document`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str = Field(min_length=1, max_length=64)
    mime_type: str | None = Field(default=None, max_length=100)
    size: int | None = Field(default=None, ge=0)
    name: str | None = Field(default=None, max_length=255)


class LocalMessage(BaseModel):
    """What a local client sends: the "webhook body" of a local channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chat: str = Field(min_length=1, max_length=128)
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1,
                          max_length=64)
    text: str = Field(default="", max_length=MAX_TEXT)
    images: tuple[LocalImage, ...] = Field(default=(), max_length=MAX_IMAGES)
    documents: tuple[LocalDocument, ...] = Field(default=(), max_length=1)
    language_hint: str | None = Field(default=None, max_length=35)
    user_name: str | None = Field(default=None, max_length=128)


class Mailbox(Protocol):
    """What a local adapter needs of its mailbox (`storage.mailbox.LocalMailbox` is one). The
    adapter only uses it: whoever built it (the composition root) closes it."""

    def download(self, upload_id: str) -> bytes | None:
        """The bytes of an upload; None when it expired or never was."""
        ...

    def post(self, key: ConversationKey, event: Mapping[str, str]) -> str:
        """Append an event to the conversation's outbox; returns its id."""
        ...


class LocalAdapter(BaseAdapter):
    """The shared part of the console and web adapters (see the module docstring)."""

    max_text_length: ClassVar[int] = MAX_TEXT

    def __init__(self, settings: Settings, mailbox: Mailbox) -> None:
        super().__init__(settings)
        self.mailbox = mailbox

    @property
    def bot_id(self) -> str:
        return LOCAL_BOT_ID

    def key(self, chat: str) -> ConversationKey:
        return ConversationKey(platform=self.platform, bot_id=LOCAL_BOT_ID, chat_id=chat,
                               user_id=chat)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # Local messages never come through /webhooks: their clients accept them directly.
        raise SignatureError(f"{self.platform.value} has no webhook", 404)

    def parse(self, body: bytes) -> list[InboundMessage]:
        try:
            message = LocalMessage.model_validate_json(body)
        except ValidationError as exc:
            raise PayloadError(f"not a local message: {exc.error_count()} error(s)") from None
        return [self.inbound(message)]

    def inbound(self, message: LocalMessage) -> InboundMessage:
        attachments = (
            *(Attachment(ref=i.ref, mime_type=i.mime_type, size=i.size) for i in message.images),
            *(Attachment(kind=AttachmentKind.DOCUMENT, ref=d.ref, mime_type=d.mime_type,
                         size=d.size, name=d.name) for d in message.documents))
        return InboundMessage(
            key=self.key(message.chat), event_id=message.event_id,
            message_id=message.event_id, kind=MessageKind.CHAT, text=message.text,
            attachments=attachments, language_hint=message.language_hint,
            user_name=message.user_name, reply_context=LocalContext(platform=self.platform))  # type: ignore[arg-type]

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        limit = self.settings.max_download_bytes
        if size is not None and size > limit:
            raise MediaTooLarge(f"file of {size} bytes is over {limit}", limit)
        try:
            data = self.mailbox.download(ref)
        except redis.RedisError as exc:
            raise MediaError(f"upload unreadable: {type(exc).__name__}") from exc
        if data is None:
            raise MediaError("upload expired or unknown")
        if len(data) > limit:
            raise MediaTooLarge(f"file of {len(data)} bytes is over {limit}", limit)
        return data

    async def send(self, reply: Reply, log: DeliveryLog) -> None:
        parts = self.parts(reply)
        for index, part in enumerate(parts):
            if log.is_sent(index):
                continue
            self.mailbox.post(reply.key, {"type": "message", "text": part.text,
                                          "formatted": "1" if part.formatted else "0",
                                          "in_reply_to": reply.in_reply_to})
            log.mark_sent(index)
        if not log.is_sent(len(parts)):
            self.mailbox.post(reply.key, {"type": "end", "in_reply_to": reply.in_reply_to,
                                          "language": reply.language})
            log.mark_sent(len(parts))

    async def indicate_typing(self, key: ConversationKey,
                              reply_context: ReplyContext | None) -> None:
        self.mailbox.post(key, {"type": "typing"})

    async def check_credentials(self) -> str:
        return f"{self.platform.value}: a local channel, no credentials needed"


@register
class ConsoleAdapter(LocalAdapter):
    """`sealion-bot chat`: one conversation a terminal session name."""

    platform = Platform.CONSOLE

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return True


@register
class WebAdapter(LocalAdapter):
    """The /chat page (WEB_CHAT=true): one conversation a browser (a cookie)."""

    platform = Platform.WEB

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.web_chat
