"""WhatsApp Cloud API webhook body, as far as `adapters.whatsapp` reads it (Graph API names).

Only changes of the `messages` field are read; the value of any other field is kept unchecked.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from adapters.payloads import Envelope, Payload

#: Unix seconds, as WhatsApp sends them: a string of digits.
DigitString = Annotated[str, Field(pattern=r"^[0-9]{1,12}$")]


class Profile(Payload):
    name: str | None = None
    username: str | None = None


class Contact(Payload):
    wa_id: str | None = None
    #: The business-scoped user id (BSUID) and the parent BSUID of linked portfolios.
    user_id: str | None = None
    parent_user_id: str | None = None
    profile: Profile | None = None


class Metadata(Payload):
    phone_number_id: str | None = None


class Text(Payload):
    body: str | None = None


class Image(Payload):
    id: str | None = None
    mime_type: str | None = None
    caption: str | None = None


class Document(Payload):
    """A file: its media id, the sender's file name and caption, the declared type."""

    id: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None


class Audio(Payload):
    id: str | None = None
    mime_type: str | None = None


class System(Payload):
    """A `system` message: `user_changed_user_id` or `user_changed_number` (Meta's webhook
    reference, system messages): the new ids, and the previous BSUIDs."""

    type: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    previous_user_id: str | None = None
    previous_parent_user_id: str | None = None


class Reaction(Payload):
    """A reaction on a message; an empty (or absent) emoji: the reaction was removed."""

    message_id: str | None = None
    emoji: str | None = None


class ButtonReply(Payload):
    id: str
    title: str | None = None


class Interactive(Payload):
    type: str | None = None
    button_reply: ButtonReply | None = None


class Context(Payload):
    """The message a message answers (a reply button's: the message it sat under)."""

    id: str | None = None


class Message(Payload):
    id: str
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    timestamp: DigitString | None = None
    type: str | None = None
    text: Text | None = None
    image: Image | None = None
    audio: Audio | None = None
    document: Document | None = None
    system: System | None = None
    reaction: Reaction | None = None
    interactive: Interactive | None = None
    context: Context | None = None


class Value(Payload):
    metadata: Metadata | None = None
    contacts: list[Contact] | None = None
    messages: list[Message] | None = None


class Change(Payload):
    """A change of one field; `value` is a `Value` for the `messages` field, else untouched."""

    field: str
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _messages_value(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("field") == "messages":
            try:
                return {**data, "value": Value.model_validate(data.get("value"))}
            except ValidationError as exc:  # re-raised without the sender's values
                error = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(part) for part in error["loc"])
                raise ValueError(f"value.{where}: {error['msg']}") from None
        return data

    @property
    def messages(self) -> Value | None:
        """The value of a `messages` change (messages, contacts, metadata); None otherwise."""
        return self.value if isinstance(self.value, Value) else None


class Entry(Payload):
    changes: list[Change] | None = None


class WhatsAppWebhook(Envelope):
    entry: list[Entry]
