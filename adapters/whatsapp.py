"""WhatsApp Cloud API over plain httpx (pywa cannot change its base URL).

Webhooks are verified with `X-Hub-Signature-256` over the raw body; the subscription handshake
echoes `hub.challenge`. A message carries every id of its sender it names (business-scoped
user id, parent BSUID, phone: `InboundMessage.identities`) and is keyed provisionally by the phone
(the business-scoped id when the phone is hidden); the accept path keys it by the person's
canonical id (storage/identities.py). A `system` message that links a person's old BSUID to a new
one (`user_changed_user_id`, `user_changed_number`) becomes an IDENTITY message, never answered.
Answers go to the phone (`to`) when the message carried one, else to the BSUID (`recipient`).
Statuses (sent, delivered, read, failed) are never answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from adapters.base import (
    BadSignature,
    BaseAdapter,
    DeliveryLog,
    MediaError,
    MediaTooLarge,
    MissingSignature,
    PermanentSendError,
    SignatureError,
    TransientSendError,
    register,
)
from adapters.feedback import buttons, reaction_value
from adapters.fetch import Fetcher, FetchPolicy
from adapters.markup import markdown_to_whatsapp
from adapters.payloads import whatsapp as payload
from adapters.payloads.whatsapp import WhatsAppWebhook
from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    MessageKind,
    Platform,
    Rating,
    RatingSource,
    Reply,
    ReplyContext,
    WhatsAppContext,
    read_feedback_data,
    readable_document,
)
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: The longest body of an interactive message (Cloud API, reply buttons).
INTERACTIVE_BODY_LIMIT = 1024
#: The user has not written in 24 hours: free-form messages are refused. Log and stop.
OUTSIDE_WINDOW = 131047
#: Throughput limits: retry with backoff.
THROTTLED = {130429, 131056, 80007, 4, 613}
_UNSUPPORTED = {"sticker", "audio", "voice", "video", "document", "location", "contacts",
                "unsupported", "interactive", "button", "order"}
#: The media info answer is a small JSON object.
MEDIA_INFO_BYTES = 64 * 1024
TYPING_SECONDS = 20.0  # the indicator lasts 25 s or until the reply
#: The shapes of a sender's ids (Meta, business-scoped user ids: a country code, a dot, up to 128
#: alphanumerics; a parent BSUID has ENT between). Only these become identities (Redis fields).
_PHONE = re.compile(r"[0-9]{1,20}")
_BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")
#: System messages that link a person's previous ids to new ones.
_ID_CHANGES = {"user_changed_user_id", "user_changed_number"}


def _rating(message: payload.Message) -> Rating | None:
    """A reaction that rates (👍 ❤️ ... / 👎 ..., or removed) or a 👍/👎 reply button."""
    if message.type == "reaction" and message.reaction is not None \
            and message.reaction.message_id:
        value = reaction_value(message.reaction.emoji)
        if value is None:
            return None
        return Rating(value=value, source=RatingSource.REACTION,
                      message_id=message.reaction.message_id)
    interactive = message.interactive
    if message.type == "interactive" and interactive is not None \
            and interactive.button_reply is not None:
        found = read_feedback_data(interactive.button_reply.id)
        if found is None:
            return None
        return Rating(value=found[0], source=RatingSource.BUTTON, turn_id=found[1],
                      message_id=message.context.id if message.context else None)
    return None


def _interactive(body: str, turn_id: str) -> dict[str, Any]:
    """An interactive message of `body` with the 👍/👎 reply buttons."""
    return {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": data, "title": name}}
                               for name, data in buttons(turn_id)]}}}


def _message_id(answer: Any) -> str | None:
    """The id WhatsApp gave a sent message (`messages[0].id`)."""
    try:
        found = answer["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return found if isinstance(found, str) and found else None


def _ids(*candidates: str | None) -> tuple[str, ...]:
    """The well-formed ids among `candidates`, in order, once each."""
    found: list[str] = []
    for value in candidates:
        if value and value not in found and (_PHONE.fullmatch(value) or _BSUID.fullmatch(value)):
            found.append(value)
    return tuple(found)


@register
class WhatsAppAdapter(BaseAdapter):
    platform = Platform.WHATSAPP
    max_text_length: ClassVar[int] = 4096

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        assert settings.whatsapp_access_token and settings.whatsapp_app_secret
        self._token = settings.whatsapp_access_token.get_secret_value()
        self._secret = settings.whatsapp_app_secret.get_secret_value().encode()
        self._base = settings.whatsapp_api_base_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._media: Fetcher | None = None

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.whatsapp_enabled

    @property
    def bot_id(self) -> str:
        return str(self.settings.whatsapp_phone_number_id)

    # --- webhook side (pure) -------------------------------------------------------------------
    def challenge(self, params: Mapping[str, str]) -> str:
        expected = self.settings.whatsapp_verify_token
        token = params.get("hub.verify_token") or ""
        if (params.get("hub.mode") != "subscribe" or expected is None
                or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())):
            raise SignatureError("wrong hub.verify_token", 403)
        return params.get("hub.challenge") or ""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            raise MissingSignature(f"missing {SIGNATURE_HEADER}")
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            raise BadSignature(f"wrong {SIGNATURE_HEADER}")

    def parse(self, body: bytes) -> list[InboundMessage]:
        # Typed and checked (adapters/payloads/whatsapp.py): PayloadError for another shape.
        webhook = WhatsAppWebhook.read(body)
        messages = []
        for entry in webhook.entry:
            for change in entry.changes or []:
                value = change.messages
                if value is None:
                    continue  # another field than `messages`: nothing to answer
                contacts: dict[str | None, payload.Contact] = {}
                for contact in value.contacts or []:
                    for known in (contact.user_id, contact.wa_id):
                        if known:
                            contacts.setdefault(known, contact)
                phone_id = (value.metadata and value.metadata.phone_number_id) or self.bot_id
                for message in value.messages or []:
                    inbound = self._to_inbound(message, contacts, phone_id)
                    if inbound is not None:
                        messages.append(inbound)
        return messages

    def _to_inbound(self, message: payload.Message, contacts: dict[str | None, payload.Contact],
                    phone_id: str) -> InboundMessage | None:
        if message.type == "system":
            return self._identity_change(message, phone_id)
        contact = contacts.get(message.from_user_id) or contacts.get(message.from_)
        phone = message.from_ or (contact.wa_id if contact else None)
        bsuid = message.from_user_id or (contact.user_id if contact else None)
        parent = message.from_parent_user_id or (contact.parent_user_id if contact else None)
        user = phone or bsuid or parent
        if not message.id or not user:
            return None
        # Keyed by the phone as before business-scoped ids (the accept path re-keys by person).
        key = ConversationKey(platform=Platform.WHATSAPP, bot_id=phone_id, chat_id=user,
                              user_id=user)
        context = WhatsAppContext(to=phone or None, message_id=message.id,
                                  user_id=bsuid or parent or None)
        common: dict[str, Any] = dict(
            key=key, event_id=message.id, message_id=message.id,
            user_name=contact.profile.name if contact and contact.profile else None,
            sender_id=user, sent_at=float(message.timestamp or 0) or None,
            reply_context=context, identities=_ids(bsuid, parent, phone))
        common = {k: v for k, v in common.items() if v is not None}
        kind = message.type
        rating = _rating(message)
        if rating is not None:  # a 👍/👎: a rating, never a turn
            return InboundMessage(kind=MessageKind.RATING, rating=rating, **common)
        if kind == "reaction":
            return None  # an emoji that rates nothing
        if kind == "text":
            return InboundMessage(text=(message.text and message.text.body) or "", **common)
        if kind == "image":
            image = message.image
            if image is None or not image.id:
                return None
            return InboundMessage(text=image.caption or "", attachments=(Attachment(
                ref=image.id, mime_type=image.mime_type),), **common)
        document = message.document
        if (kind == "document" and document and document.id
                and readable_document(document.mime_type, document.filename)):
            return InboundMessage(text=document.caption or "", attachments=(Attachment(
                kind=AttachmentKind.DOCUMENT, ref=document.id, mime_type=document.mime_type,
                name=(document.filename or "")[:255] or None),), **common)
        audio = message.audio
        if kind == "audio" and audio and audio.id and self.settings.asr_enabled:
            # Voice notes (voice: true) and forwarded audio files alike: OGG/Opus, MP3, AAC...
            return InboundMessage(attachments=(Attachment(
                kind=AttachmentKind.AUDIO, ref=audio.id, mime_type=audio.mime_type),), **common)
        if kind in _UNSUPPORTED:
            return InboundMessage(kind=MessageKind.UNSUPPORTED, **common)
        return None  # orders, ...

    @staticmethod
    def _identity_change(message: payload.Message, phone_id: str) -> InboundMessage | None:
        """A `system` message linking a person's previous ids to new ones, or None (another
        system message, or one naming no id on either side)."""
        system = message.system
        if system is None or system.type not in _ID_CHANGES:
            return None
        previous = _ids(system.previous_user_id, message.from_user_id,
                        system.previous_parent_user_id, message.from_)
        new = _ids(system.user_id, system.parent_user_id, system.wa_id)
        if not previous or not new:
            return None
        key = ConversationKey(platform=Platform.WHATSAPP, bot_id=phone_id, chat_id=previous[0],
                              user_id=previous[0])
        return InboundMessage(key=key, event_id=message.id, message_id=message.id,
                              kind=MessageKind.IDENTITY, sender_id=previous[0], identities=new,
                              previous_identities=previous)

    # --- worker side ---------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.platform_timeout_seconds,
                                      connect=self.settings.platform_connect_timeout_seconds),
                headers={"Authorization": f"Bearer {self._token}"})
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._media is not None:
            await self._media.aclose()
            self._media = None

    def typing_interval(self) -> float:
        return TYPING_SECONDS

    def format_answer(self, markdown: str) -> str:
        return markdown_to_whatsapp(markdown)

    async def check_credentials(self) -> str:
        url = f"{self._base}/{self.settings.whatsapp_phone_number_id}"
        try:
            response = await self._http().get(url)
        except httpx.HTTPError as exc:
            raise PermanentSendError(f"WhatsApp unreachable: {exc}", code="network") from exc
        if response.status_code != 200:
            raise PermanentSendError(
                f"WhatsApp refused the access token or phone number id: HTTP "
                f"{response.status_code}", code=str(response.status_code))
        number = response.json()
        return (f"access token accepted for {number.get('display_phone_number')} "
                f"({number.get('verified_name')})")

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        limit = self.settings.max_download_bytes
        fetcher = self._fetcher()
        auth = {"Authorization": f"Bearer {self._token}"}
        # Both hops go through the fetch policy: the media URL is whatever the answer says, and
        # the token must reach only the Graph API and Meta's media hosts.
        info = await fetcher.get(f"{self._base}/{quote(ref, safe='')}", secret_headers=auth,
                                 max_bytes=MEDIA_INFO_BYTES)
        try:
            meta = json.loads(info)
            url = meta["url"]
            announced = int(meta.get("file_size") or 0)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MediaError(f"WhatsApp media {ref}: unreadable media info") from exc
        if not isinstance(url, str):
            raise MediaError(f"WhatsApp media {ref}: no media URL")
        if announced > limit:
            raise MediaTooLarge(f"{announced} bytes is over {limit}", limit)
        # The URL lives about five minutes and needs the same bearer token: fetch it now.
        return await fetcher.get(url, secret_headers=auth, max_bytes=limit)

    def _fetcher(self) -> Fetcher:
        if self._media is None:
            self._media = Fetcher(FetchPolicy.for_platform(
                self.settings, [self._base],
                self.settings.whatsapp_media_hosts.split(",")))
        return self._media

    async def indicate_typing(self, key: ConversationKey,
                              reply_context: ReplyContext | None) -> None:
        if isinstance(reply_context, WhatsAppContext) and reply_context.message_id:
            message_id = reply_context.message_id
            await self._post({"messaging_product": "whatsapp", "status": "read",
                              "message_id": message_id, "typing_indicator": {"type": "text"}})

    async def send(self, reply: Reply, log_: DeliveryLog) -> None:
        context = reply.reply_context
        # Meta prefers the phone (it keeps phone numbers in later webhooks); a person who hides
        # theirs is answered at their business-scoped id, in `recipient` ("if both `to` and
        # `recipient` are present, `to` takes precedence": never both).
        address: dict[str, str] = {"to": reply.key.chat_id}
        if isinstance(context, WhatsAppContext):
            address = {"to": context.to} if context.to else {"recipient": str(context.user_id)}
        parts = self.parts(reply)
        rated = bool(reply.feedback) and bool(parts) and parts[-1].formatted
        # The answer's last part carries the 👍/👎 reply buttons when it fits an interactive
        # message's body; else the buttons follow it, under a short question (one more part).
        inline = rated and len(parts[-1].text) <= INTERACTIVE_BODY_LIMIT
        for index, part in enumerate(parts):
            if log_.is_sent(index):
                continue
            if inline and index == len(parts) - 1:
                body: dict[str, Any] = _interactive(part.text, str(reply.feedback))
            else:
                body = {"type": "text", "text": {"body": part.text, "preview_url": False}}
            answer = await self._post({"messaging_product": "whatsapp",
                                       "recipient_type": "individual", **address, **body})
            log_.mark_sent(index, _message_id(answer))
        if rated and not inline and not log_.is_sent(len(parts)):
            answer = await self._post({
                "messaging_product": "whatsapp", "recipient_type": "individual", **address,
                **_interactive(text(Text.FEEDBACK_ASK, reply.language), str(reply.feedback))})
            log_.mark_sent(len(parts), _message_id(answer))

    async def _post(self, payload: dict[str, Any]) -> Any:
        url = f"{self._base}/{self.settings.whatsapp_phone_number_id}/messages"
        try:
            response = await self._http().post(url, json=payload)
        except httpx.HTTPError as exc:
            raise TransientSendError(f"WhatsApp unreachable: {exc}", 2.0,
                                     code="network") from exc
        if response.status_code == 200:
            return response.json()
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code = int(error.get("code") or 0)
        description = f"WhatsApp HTTP {response.status_code} code {code}: {error.get('message')}"
        if code == OUTSIDE_WINDOW:
            log.warning("outside the 24-hour window; not retried: %s", description)
            raise PermanentSendError(description, code=str(code))
        if code in THROTTLED or response.status_code == 429 or response.status_code >= 500:
            raise TransientSendError(description, 4.0, code=str(code or response.status_code))
        raise PermanentSendError(description, code=str(code or response.status_code))
