"""LINE's webhook body, as far as `adapters.line` reads it (the Messaging API's field names)."""

from __future__ import annotations

from pydantic import Field

from adapters.payloads import Count, Envelope, Milliseconds, Payload


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


class Event(Payload):
    """Any event; only the fields read for follow, join and message events are typed."""

    type: str
    webhookEventId: str | None = None  # noqa: N815
    timestamp: Milliseconds | None = None
    replyToken: str | None = None  # noqa: N815
    source: Source | None = None
    message: Message | None = None


class LineWebhook(Envelope):
    destination: str | None = None
    events: list[Event]
