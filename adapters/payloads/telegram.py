"""Telegram's Update, as far as `adapters.telegram` reads it (the Bot API's field names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from adapters.payloads import Count, Envelope, Int64, Payload, Seconds


class User(Payload):
    id: Int64
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class Chat(Payload):
    id: Int64
    type: str


class MessageEntity(Payload):
    type: str
    offset: Count
    length: Count
    user: User | None = None


class PhotoSize(Payload):
    file_id: str
    width: Count
    height: Count
    file_size: Count | None = None


class Document(Payload):
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: Int64 | None = None


class Sound(Payload):
    """A voice note or an audio file."""

    file_id: str
    mime_type: str | None = None
    file_size: Int64 | None = None
    duration: Count | None = None


class RepliedMessage(Payload):
    """The message answered: only its author is read (is it the bot?)."""

    from_: User | None = Field(default=None, alias="from")


class Message(Payload):
    message_id: Int64
    date: Seconds
    chat: Chat
    from_: User | None = Field(default=None, alias="from")
    text: str | None = None
    caption: str | None = None
    entities: list[MessageEntity] | None = None
    caption_entities: list[MessageEntity] | None = None
    photo: list[PhotoSize] | None = None
    document: Document | None = None
    voice: Sound | None = None
    audio: Sound | None = None
    new_chat_members: list[User] | None = None
    reply_to_message: RepliedMessage | None = None
    media_group_id: str | None = None
    message_thread_id: Int64 | None = None
    is_topic_message: bool | None = None


class CallbackMessage(Payload):
    """The message a pressed inline button sat under (possibly inaccessible: date 0)."""

    message_id: Int64
    chat: Chat


class CallbackQuery(Payload):
    """An inline button pressed: a 👍/👎 under an answer."""

    id: str
    from_: User = Field(alias="from")
    message: CallbackMessage | None = None
    data: str | None = None


class ReactionType(Payload):
    type: str
    emoji: str | None = None


class MessageReactionUpdated(Payload):
    """A reaction on a message changed (`message_reaction`, with `allowed_updates`)."""

    chat: Chat
    message_id: Int64
    user: User | None = None
    date: Seconds
    old_reaction: list[ReactionType] = Field(default_factory=list)
    new_reaction: list[ReactionType] = Field(default_factory=list)


class TelegramUpdate(Envelope):
    """An update; `message` updates are answered, `callback_query` and `message_reaction` ones
    are ratings, the others are read no further."""

    update_id: Annotated[int, Field(ge=0, lt=2**53)]
    message: Message | None = None
    callback_query: CallbackQuery | None = None
    message_reaction: MessageReactionUpdated | None = None
