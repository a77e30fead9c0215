"""LINE's webhook body, as far as `adapters.line` reads it (the Messaging API's field names)."""

from __future__ import annotations

from pydantic import Field

from adapters.payloads import Count, Envelope, Int64, Milliseconds, Payload


class Source(Payload):
    type: str
    userId: str | None = None  # noqa: N815 (LINE's names)
    groupId: str | None = None  # noqa: N815
    roomId: str | None = None  # noqa: N815


class Mentionee(Payload):
    index: Count = 0
    length: Count = 0
    isSelf: bool = False  # noqa: N815


class Mention(Payload):
    mentionees: list[Mentionee] = Field(default_factory=list)


class ImageSet(Payload):
    id: str


class ContentProvider(Payload):
    type: str
    originalContentUrl: str | None = None  # noqa: N815


class Message(Payload):
    id: str
    type: str
    text: str | None = None
    mention: Mention | None = None
    imageSet: ImageSet | None = None  # noqa: N815
    contentProvider: ContentProvider | None = None  # noqa: N815
    #: Audio and video: milliseconds.
    duration: Count | None = None
    #: File messages: the name the sender gave and the size in bytes.
    fileName: str | None = None  # noqa: N815
    fileSize: Int64 | None = None  # noqa: N815
    #: Marks this message (and the chat's earlier ones) read: POST /v2/bot/chat/markAsRead.
    markAsReadToken: str | None = None  # noqa: N815


class Postback(Payload):
    """A postback action's data (a 👍/👎 quick-reply button: "fb:+1:<turn id>")."""

    data: str


class Event(Payload):
    """Any event; only the fields read for follow, join and message events are typed."""

    type: str
    #: "standby" while another module holds the chat: such events are never answered.
    mode: str | None = None
    webhookEventId: str | None = None  # noqa: N815
    timestamp: Milliseconds | None = None
    replyToken: str | None = None  # noqa: N815
    source: Source | None = None
    message: Message | None = None
    postback: Postback | None = None


class LineWebhook(Envelope):
    destination: str | None = None
    events: list[Event]
