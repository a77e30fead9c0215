"""Platform-neutral types that cross Celery as JSON.

A message carries an address (`ConversationKey`), never a client object. Whatever an adapter
needs to answer later (a LINE reply token, a Telegram message to reply to) travels in
`reply_context`, opaque to everything outside `adapters/`.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
        within a deployment (bot.logs.pseudonym), never a phone number or account id."""
        from bot.logs import pseudonym

        return f"{self.platform.value}:{pseudonym(self.as_path())}"


class AttachmentKind(enum.StrEnum):
    IMAGE = "image"
    #: A voice note or audio clip, transcribed before the model sees the turn.
    AUDIO = "audio"


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


class MessageKind(enum.StrEnum):
    #: Text and/or images for the model.
    CHAT = "chat"
    #: Something we cannot read (a sticker, voice, a location): answered with a short notice.
    UNSUPPORTED = "unsupported"
    #: Someone started talking to the bot or added it to a group: answered with a greeting.
    GREETING = "greeting"


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
    #: The platform's idea of the user's language (Telegram `language_code`), if any.
    language_hint: str | None = None
    user_name: str | None = None
    #: Who wrote it: the platform's id of the sender (Telegram user id, LINE userId, WhatsApp
    #: wa_id), also in groups, where `key.user_id` is empty. Deleting a person finds their
    #: group messages by it.
    sender_id: str = ""
    sent_at: float = Field(default_factory=time.time)
    received_at: float = Field(default_factory=time.time)
    reply_context: dict[str, Any] = Field(default_factory=dict)


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
    reply_context: dict[str, Any] = Field(default_factory=dict)
