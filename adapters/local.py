"""Local channels: the terminal (`sealion-bot chat`) and the /chat page, as real adapters.

A local channel has no platform server, so its "platform" is a mailbox in Redis:

    client (terminal, browser)                         worker (the same pipeline as Telegram)
    LocalMailbox.upload(photo) -> upload id   ──▶     fetch_media(upload id)
    parse(LocalMessage JSON) -> InboundMessage ──▶    accept (dedupe, pending list, queue)
    LocalMailbox.read(key, after) ◀──────────────     send(reply): one event per part, then "end"

Events on a conversation's outbox stream (all values strings):

    {"type": "message", "text": ..., "formatted": "1"|"0", "in_reply_to": message id}
    {"type": "typing"}
    {"type": "end", "in_reply_to": message id}      the reply to that message is complete

The delivery log covers the "end" marker too (index = number of parts), so a retried send
adds nothing twice. The one import outside bot/ is `storage.keys.KeyBuilder`, so that the
mailbox's keys are listed with every other Redis key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

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
from bot.messages import (
    Attachment,
    ConversationKey,
    InboundMessage,
    MessageKind,
    Platform,
    Reply,
)
from bot.settings import Settings
from storage.keys import KeyBuilder

#: The bot id of every local conversation (there is no platform account).
LOCAL_BOT_ID = "local"
#: Events kept per conversation outbox (older ones are trimmed).
OUTBOX_LENGTH = 500
#: Images per local message.
MAX_IMAGES = 10
#: Characters per local message.
MAX_TEXT = 16_000


class LocalImage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str = Field(min_length=1, max_length=64)
    mime_type: str | None = Field(default=None, max_length=100)
    size: int | None = Field(default=None, ge=0)


class LocalMessage(BaseModel):
    """What a local client sends: the "webhook body" of a local channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chat: str = Field(min_length=1, max_length=128)
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1,
                          max_length=64)
    text: str = Field(default="", max_length=MAX_TEXT)
    images: tuple[LocalImage, ...] = Field(default=(), max_length=MAX_IMAGES)
    language_hint: str | None = Field(default=None, max_length=35)
    user_name: str | None = Field(default=None, max_length=128)


class LocalMailbox:
    """Uploads and reply events of the local channels, in Redis (keys from `KeyBuilder`)."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int = 3600, outbox_ttl: int = 86400,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._upload_ttl = upload_ttl
        self._outbox_ttl = outbox_ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalMailbox:
        client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=10,
                                      socket_connect_timeout=5)
        return cls(client, upload_ttl=max(settings.turn_timeout_seconds * 4, 3600),
                   outbox_ttl=settings.history_ttl_seconds)

    def upload(self, data: bytes) -> str:
        upload_id = uuid.uuid4().hex
        self._redis.set(self._keys.upload(upload_id), data, ex=self._upload_ttl)
        return upload_id

    def download(self, upload_id: str) -> bytes | None:
        value = self._redis.get(self._keys.upload(upload_id))
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def post(self, key: ConversationKey, event: Mapping[str, str]) -> str:
        name = self._keys.outbox(key)
        pipe = self._redis.pipeline()
        fields: dict[Any, Any] = dict(event)
        pipe.xadd(name, fields, maxlen=OUTBOX_LENGTH, approximate=True)
        pipe.expire(name, self._outbox_ttl)
        event_id = pipe.execute()[0]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def last_id(self, key: ConversationKey) -> str:
        """The newest event's id ("0-0" when there is none): read after it for new ones."""
        newest = self._redis.xrevrange(self._keys.outbox(key), count=1)
        if not newest:
            return "0-0"
        event_id = newest[0][0]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def read(self, key: ConversationKey, after: str = "0-0", *, block_ms: int | None = None,
             count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Events after `after`, oldest first; waits up to `block_ms` for one when given."""
        found: Any = self._redis.xread({self._keys.outbox(key): after}, count=count,
                                       block=block_ms)
        out: list[tuple[str, dict[str, str]]] = []
        for _stream, entries in found or []:
            for event_id, fields in entries:
                out.append((_text(event_id), {_text(k): _text(v) for k, v in fields.items()}))
        return out

    def clear(self, key: ConversationKey) -> None:
        self._redis.delete(self._keys.outbox(key))

    def close(self) -> None:
        self._redis.close()


class LocalAdapter(BaseAdapter):
    """The shared part of the console and web adapters (see the module docstring)."""

    max_text_length: ClassVar[int] = MAX_TEXT

    def __init__(self, settings: Settings, mailbox: LocalMailbox | None = None) -> None:
        super().__init__(settings)
        self._mailbox = mailbox

    @property
    def mailbox(self) -> LocalMailbox:
        if self._mailbox is None:
            self._mailbox = LocalMailbox.from_settings(self.settings)
        return self._mailbox

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
        attachments = tuple(Attachment(ref=i.ref, mime_type=i.mime_type, size=i.size)
                            for i in message.images)
        return InboundMessage(
            key=self.key(message.chat), event_id=message.event_id,
            message_id=message.event_id, kind=MessageKind.CHAT, text=message.text,
            attachments=attachments, language_hint=message.language_hint,
            user_name=message.user_name, reply_context={"private": True})

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

    async def indicate_typing(self, key: ConversationKey, reply_context: dict) -> None:
        self.mailbox.post(key, {"type": "typing"})

    async def check_credentials(self) -> str:
        return f"{self.platform.value}: a local channel, no credentials needed"

    async def aclose(self) -> None:
        if self._mailbox is not None:
            self._mailbox.close()
            self._mailbox = None


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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
