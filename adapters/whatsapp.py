"""WhatsApp Cloud API over plain httpx (pywa cannot change its base URL).

Webhooks are verified with `X-Hub-Signature-256` over the raw body; the subscription handshake
echoes `hub.challenge`. Users are keyed by `wa_id`, or by the business-scoped user id when a
payload carries no phone number. Statuses (sent, delivered, read, failed) are never answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
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
from adapters.fetch import Fetcher, FetchPolicy
from adapters.markup import markdown_to_whatsapp
from adapters.payloads import whatsapp as payload
from adapters.payloads.whatsapp import WhatsAppWebhook
from bot.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    MessageKind,
    Platform,
    Reply,
)
from bot.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: The user has not written in 24 hours: free-form messages are refused. Log and stop.
OUTSIDE_WINDOW = 131047
#: Throughput limits: retry with backoff.
THROTTLED = {130429, 131056, 80007, 4, 613}
_UNSUPPORTED = {"sticker", "audio", "voice", "video", "document", "location", "contacts",
                "unsupported", "interactive", "button", "order"}
#: The media info answer is a small JSON object.
MEDIA_INFO_BYTES = 64 * 1024
TYPING_SECONDS = 20.0  # the indicator lasts 25 s or until the reply


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
                contacts = {c.wa_id or c.user_id: c for c in value.contacts or []}
                phone_id = (value.metadata and value.metadata.phone_number_id) or self.bot_id
                for message in value.messages or []:
                    inbound = self._to_inbound(message, contacts, phone_id)
                    if inbound is not None:
                        messages.append(inbound)
        return messages

    def _to_inbound(self, message: payload.Message, contacts: dict[str | None, payload.Contact],
                    phone_id: str) -> InboundMessage | None:
        user = message.from_ or message.from_user_id
        if not message.id or not user:
            return None
        contact = contacts.get(user)
        key = ConversationKey(platform=Platform.WHATSAPP, bot_id=phone_id, chat_id=user,
                              user_id=user)
        context = {"to": user, "message_id": message.id}
        if contact and contact.user_id:
            context["user_id"] = contact.user_id
        common: dict[str, Any] = dict(
            key=key, event_id=message.id, message_id=message.id,
            user_name=contact.profile.name if contact and contact.profile else None,
            sender_id=user, sent_at=float(message.timestamp or 0) or None,
            reply_context=context)
        common = {k: v for k, v in common.items() if v is not None}
        kind = message.type
        if kind == "text":
            return InboundMessage(text=(message.text and message.text.body) or "", **common)
        if kind == "image":
            image = message.image
            if image is None or not image.id:
                return None
            return InboundMessage(text=image.caption or "", attachments=(Attachment(
                ref=image.id, mime_type=image.mime_type),), **common)
        audio = message.audio
        if kind == "audio" and audio and audio.id and self.settings.asr_enabled:
            # Voice notes (voice: true) and forwarded audio files alike: OGG/Opus, MP3, AAC...
            return InboundMessage(attachments=(Attachment(
                kind=AttachmentKind.AUDIO, ref=audio.id, mime_type=audio.mime_type),), **common)
        if kind in _UNSUPPORTED:
            return InboundMessage(kind=MessageKind.UNSUPPORTED, **common)
        return None  # reactions, system messages, ...

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

    async def indicate_typing(self, key: ConversationKey, reply_context: dict) -> None:
        message_id = reply_context.get("message_id")
        if message_id:
            await self._post({"messaging_product": "whatsapp", "status": "read",
                              "message_id": message_id, "typing_indicator": {"type": "text"}})

    async def send(self, reply: Reply, log_: DeliveryLog) -> None:
        to = reply.reply_context.get("to") or reply.key.chat_id
        for index, part in enumerate(self.parts(reply)):
            if log_.is_sent(index):
                continue
            await self._post({"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": to, "type": "text",
                              "text": {"body": part.text, "preview_url": False}})
            log_.mark_sent(index)

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
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
