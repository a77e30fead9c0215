"""LINE Messaging API, on line-bot-sdk v3 (signature check and the async API clients).

Replies use the event's reply token while it is fresh (single use, about a minute); when it has
expired or LINE refuses it, the rest goes by push with an `X-Line-Retry-Key` derived from the
conversation and the message answered, so a retried task never pushes twice (LINE answers 409).
Events are read from the raw JSON so that new event types are ignored, never an error.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from linebot.v3 import SignatureValidator
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException

from adapters.base import (
    BadSignature,
    BaseAdapter,
    DeliveryLog,
    MissingSignature,
    PermanentSendError,
    TransientSendError,
    register,
)
from adapters.fetch import Fetcher, FetchPolicy, FetchRefused
from adapters.markup import markdown_to_plain
from adapters.payloads.line import LineWebhook
from adapters.textsplit import utf16_len
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

SIGNATURE_HEADER = "X-Line-Signature"
#: A reply token is good for about one minute; stop trusting it a little before.
REPLY_TOKEN_SECONDS = 50.0
MAX_MESSAGES_PER_CALL = 5
LOADING_SECONDS = 20
_RETRY_KEY_NAMESPACE = uuid.UUID("6c1d7c1e-5e9f-4a55-9d43-3c5a4f1b2a10")
_UNSUPPORTED = {"sticker", "audio", "video", "location", "file"}
#: The ref of an image whose content sits with an external provider (never fetched).
EXTERNAL_PREFIX = "external:"


class ExternalContentRefused(FetchRefused):
    """A LINE image kept by an external provider: we do not request sender-chosen URLs."""


@register
class LineAdapter(BaseAdapter):
    platform = Platform.LINE
    max_text_length: ClassVar[int] = 5000
    text_length: ClassVar[Callable[[str], int]] = staticmethod(utf16_len)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        assert settings.line_channel_secret and settings.line_channel_access_token
        self._validator = SignatureValidator(settings.line_channel_secret.get_secret_value())
        self._token = settings.line_channel_access_token.get_secret_value()
        self._client: AsyncApiClient | None = None
        self._media: Fetcher | None = None

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.line_enabled

    @property
    def bot_id(self) -> str:
        """Placeholder: each webhook names the bot (`destination`), which keys its messages."""
        return "line"

    # --- webhook side (pure) -------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise MissingSignature(f"missing {SIGNATURE_HEADER}", 401)
        try:
            valid = self._validator.validate(body.decode("utf-8"), signature)
        except (UnicodeDecodeError, ValueError):
            valid = False
        if not valid:
            raise BadSignature(f"wrong {SIGNATURE_HEADER}", 400)

    def parse(self, body: bytes) -> list[InboundMessage]:
        # The fields read below, typed (adapters/payloads/line.py); PayloadError if not.
        data = LineWebhook.read(body).raw
        bot_id = str(data.get("destination") or self.bot_id)
        messages = []
        for event in data["events"]:
            if isinstance(event, dict):
                message = self._to_inbound(event, bot_id)
                if message is not None:
                    messages.append(message)
        return messages

    def _to_inbound(self, event: dict[str, Any], bot_id: str) -> InboundMessage | None:
        kind = event.get("type")
        source = event.get("source") or {}
        event_id = event.get("webhookEventId")
        if not event_id or not isinstance(source, dict):
            return None
        source_type = source.get("type")
        user_id = source.get("userId") or ""
        chat_id = {"group": source.get("groupId"), "room": source.get("roomId")}.get(
            str(source_type), user_id)
        if not chat_id:
            return None
        private = source_type == "user"
        key = ConversationKey(platform=Platform.LINE, bot_id=bot_id, chat_id=chat_id,
                              user_id=user_id if private else "")
        sent_at = float(event.get("timestamp") or time.time() * 1000) / 1000
        context: dict[str, Any] = {"to": chat_id, "private": private}
        if event.get("replyToken"):
            context["reply_token"] = event["replyToken"]
            context["reply_token_expires_at"] = sent_at + REPLY_TOKEN_SECONDS
        common: dict[str, Any] = dict(key=key, event_id=event_id, sent_at=sent_at,
                                      sender_id=str(user_id),
                                      reply_context=context)

        if kind in ("follow", "join"):
            return InboundMessage(kind=MessageKind.GREETING, message_id=event_id, **common)
        if kind != "message":
            return None  # unfollow, leave, postback, unsend, ...: nothing to answer
        message = event.get("message") or {}
        message_type = message.get("type")
        message_id = str(message.get("id") or event_id)
        text = message.get("text") or ""
        if not private and not _mentions_me(message):
            return None
        if not private and message_type == "text":
            text = _strip_mentions(text, message)
        if message_type == "text":
            return InboundMessage(message_id=message_id, text=text, **common)
        if message_type == "image":
            image_set = message.get("imageSet") or {}
            provider = message.get("contentProvider") or {}
            # An external provider's URL is the sender's choice: keep only a marker, never it.
            ref = (f"{EXTERNAL_PREFIX}{message_id}" if provider.get("type") == "external"
                   else message_id)
            return InboundMessage(message_id=message_id, album_id=image_set.get("id"),
                                  attachments=(Attachment(ref=ref, mime_type="image/jpeg"),),
                                  **common)
        if message_type == "audio" and self.settings.asr_enabled:
            provider = message.get("contentProvider") or {}
            ref = (f"{EXTERNAL_PREFIX}{message_id}" if provider.get("type") == "external"
                   else message_id)
            duration = message.get("duration")  # milliseconds
            return InboundMessage(message_id=message_id, attachments=(Attachment(
                kind=AttachmentKind.AUDIO, ref=ref, mime_type="audio/m4a",
                duration=duration / 1000 if isinstance(duration, int | float) else None),),
                **common)
        if message_type in _UNSUPPORTED:
            return InboundMessage(kind=MessageKind.UNSUPPORTED, message_id=message_id, **common)
        return None

    # --- worker side ---------------------------------------------------------------------------
    def _api(self) -> AsyncMessagingApi:
        if self._client is None:
            self._client = AsyncApiClient(Configuration(
                host=self.settings.line_api_base_url.rstrip("/"), access_token=self._token))
        return AsyncMessagingApi(self._client)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        if self._media is not None:
            await self._media.aclose()
            self._media = None

    def typing_interval(self) -> float:
        return LOADING_SECONDS - 5

    async def indicate_typing(self, key: ConversationKey, reply_context: dict) -> None:
        if not reply_context.get("private"):
            return  # LINE shows the loading animation in one-to-one chats only
        await self._api().show_loading_animation(ShowLoadingAnimationRequest(
            chat_id=key.chat_id, loading_seconds=LOADING_SECONDS))

    async def language_hint(self, key: ConversationKey) -> str | None:
        if not key.user_id:
            return None
        try:
            profile = await self._api().get_profile(key.user_id)
        except ApiException:
            return None
        return getattr(profile, "language", None)

    async def check_credentials(self) -> str:
        try:
            info = await self._api().get_bot_info()
        except ApiException as exc:
            raise PermanentSendError(f"LINE refused the channel access token: HTTP {exc.status}",
                                     code=str(exc.status)) from exc
        return f"channel access token accepted: {info.display_name} ({info.basic_id})"

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        if ref.startswith(EXTERNAL_PREFIX) or "://" in ref:
            # An image kept by an external provider: its URL is the sender's choice, so it is
            # never requested; the person is told the image could not be read.
            raise ExternalContentRefused("LINE image from an external provider: not fetched")
        url = (f"{self.settings.line_data_api_base_url.rstrip('/')}/v2/bot/message/"
               f"{quote(ref, safe='')}/content")
        if self._media is None:
            self._media = Fetcher(FetchPolicy.for_platform(
                self.settings, [self.settings.line_data_api_base_url]))
        return await self._media.get(url,
                                     secret_headers={"Authorization": f"Bearer {self._token}"})

    async def send(self, reply: Reply, log_: DeliveryLog) -> None:
        parts = self.parts(reply)
        pending = [i for i in range(len(parts)) if not log_.is_sent(i)]
        if not pending:
            return
        context = reply.reply_context
        token = context.get("reply_token")
        fresh = bool(token) and time.time() < float(context.get("reply_token_expires_at", 0))
        if fresh and pending[0] == 0:
            batch = pending[:MAX_MESSAGES_PER_CALL]
            try:
                await self._api().reply_message(ReplyMessageRequest(
                    reply_token=token, messages=[TextMessage(text=parts[i].text) for i in batch]))
                for i in batch:
                    log_.mark_sent(i)
                pending = pending[len(batch):]
            except ApiException as exc:
                if exc.status != 400:
                    raise _send_error(exc) from exc
                log.info("LINE refused the reply token (%s); pushing instead", exc.reason)
        for start in range(0, len(pending), MAX_MESSAGES_PER_CALL):
            batch = pending[start:start + MAX_MESSAGES_PER_CALL]
            retry_key = uuid.uuid5(_RETRY_KEY_NAMESPACE,
                                   f"{reply.key.as_path()}|{reply.in_reply_to}|{batch[0]}")
            try:
                await self._api().push_message(
                    PushMessageRequest(to=context.get("to") or reply.key.chat_id,
                                       messages=[TextMessage(text=parts[i].text) for i in batch]),
                    x_line_retry_key=str(retry_key))
            except ApiException as exc:
                if exc.status != 409:  # 409: this retry key was accepted before
                    raise _send_error(exc) from exc
            for i in batch:
                log_.mark_sent(i)

    def format_answer(self, markdown: str) -> str:
        return markdown_to_plain(markdown)


def _mentions_me(message: dict[str, Any]) -> bool:
    mention = message.get("mention") or {}
    return any(m.get("isSelf") for m in mention.get("mentionees") or [] if isinstance(m, dict))


def _strip_mentions(text: str, message: dict[str, Any]) -> str:
    """Remove the bot's own @mention (indices count UTF-16 code units) from the text."""
    encoded = text.encode("utf-16-le")
    mentionees = sorted(((m.get("index", 0), m.get("length", 0))
                         for m in (message.get("mention") or {}).get("mentionees") or []
                         if m.get("isSelf")), reverse=True)
    for index, length in mentionees:
        encoded = encoded[:index * 2] + encoded[(index + length) * 2:]
    return encoded.decode("utf-16-le", "ignore").strip()


def _send_error(exc: ApiException) -> Exception:
    status = exc.status or 0
    if status == 429 or status >= 500:
        retry_after = float((exc.headers or {}).get("Retry-After") or 2)
        return TransientSendError(f"LINE HTTP {status}", retry_after, code=str(status))
    return PermanentSendError(f"LINE HTTP {status}: {exc.body}", code=str(status))
