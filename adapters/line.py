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

import aiohttp
from linebot.v3 import SignatureValidator
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    MarkMessagesAsReadByTokenRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException

from adapters.base import (
    BadSignature,
    BaseAdapter,
    DeliveryLog,
    MediaTooLarge,
    MissingSignature,
    OutgoingPart,
    PermanentSendError,
    TransientSendError,
    register,
    retry_after_seconds,
)
from adapters.feedback import buttons
from adapters.fetch import Fetcher, FetchPolicy, FetchRefused
from adapters.markup import markdown_to_plain
from adapters.payloads import line as payload
from adapters.payloads.line import LineWebhook
from adapters.textsplit import utf16_len
from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    LineContext,
    MessageKind,
    Platform,
    Rating,
    RatingSource,
    Reply,
    ReplyContext,
    read_feedback_data,
    readable_document,
)
from bot.kernel.settings import Settings

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
        # Typed and checked (adapters/payloads/line.py): PayloadError for another shape.
        webhook = LineWebhook.read(body)
        bot_id = webhook.destination or self.bot_id
        return [message for event in webhook.events
                if (message := self._to_inbound(event, bot_id)) is not None]

    def _to_inbound(self, event: payload.Event, bot_id: str) -> InboundMessage | None:
        source, event_id = event.source, event.webhookEventId
        if not event_id or source is None or event.mode == "standby":
            # standby: another module holds the chat; LINE documents that this bot sends nothing.
            return None
        user_id = source.userId or ""
        chat_id = {"group": source.groupId, "room": source.roomId}.get(source.type, user_id)
        if not chat_id:
            return None
        private = source.type == "user"
        key = ConversationKey(platform=Platform.LINE, bot_id=bot_id, chat_id=chat_id,
                              user_id=user_id if private else "")
        sent_at = (event.timestamp or time.time() * 1000) / 1000
        context = LineContext(
            to=chat_id, private=private, reply_token=event.replyToken or None,
            reply_token_expires_at=sent_at + REPLY_TOKEN_SECONDS if event.replyToken else 0.0,
            mark_as_read_token=event.message.markAsReadToken if event.message else None)
        common: dict[str, Any] = dict(key=key, event_id=event_id, sent_at=sent_at,
                                      sender_id=user_id, reply_context=context)

        if event.type in ("follow", "join"):
            return InboundMessage(kind=MessageKind.GREETING, message_id=event_id, **common)
        if event.type == "postback":  # a 👍/👎 quick reply: a rating, never a turn
            found = read_feedback_data(event.postback.data if event.postback else None)
            if found is None:
                return None
            return InboundMessage(kind=MessageKind.RATING, message_id=event_id,
                                  rating=Rating(value=found[0], source=RatingSource.BUTTON,
                                                turn_id=found[1]), **common)
        message = event.message
        if event.type != "message" or message is None:
            return None  # unfollow, leave, unsend, ...: nothing to answer
        message_id = message.id or event_id
        text = message.text or ""
        own_mentions = [m for m in (message.mention.mentionees if message.mention else [])
                        if m.isSelf]
        if not private and not own_mentions:
            return None
        if not private and message.type == "text":
            text = _strip_mentions(text, own_mentions)
        # An external provider's URL is the sender's choice: keep only a marker, never it.
        external = message.contentProvider is not None \
            and message.contentProvider.type == "external"
        ref = f"{EXTERNAL_PREFIX}{message_id}" if external else message_id
        if message.type == "text":
            return InboundMessage(message_id=message_id, text=text, **common)
        if message.type == "image":
            return InboundMessage(message_id=message_id,
                                  album_id=message.imageSet.id if message.imageSet else None,
                                  attachments=(Attachment(ref=ref, mime_type="image/jpeg"),),
                                  **common)
        if message.type == "audio" and self.settings.asr_enabled:
            duration = message.duration / 1000 if message.duration is not None else None
            return InboundMessage(message_id=message_id, attachments=(Attachment(
                kind=AttachmentKind.AUDIO, ref=ref, mime_type="audio/m4a", duration=duration),),
                **common)
        if message.type == "file" and readable_document(None, message.fileName):
            return InboundMessage(message_id=message_id, attachments=(Attachment(
                kind=AttachmentKind.DOCUMENT, ref=ref, size=message.fileSize,
                name=(message.fileName or "")[:255] or None),), **common)
        if message.type in _UNSUPPORTED:
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

    async def indicate_typing(self, key: ConversationKey,
                              reply_context: ReplyContext | None) -> None:
        if not _context(reply_context, key).private:
            return  # LINE shows the loading animation in one-to-one chats only
        await self._api().show_loading_animation(ShowLoadingAnimationRequest(
            chat_id=key.chat_id, loading_seconds=LOADING_SECONDS),
            _request_timeout=self._timeout())

    async def language_hint(self, key: ConversationKey) -> str | None:
        if not key.user_id:
            return None
        try:
            profile = await self._api().get_profile(key.user_id,
                                                    _request_timeout=self._timeout())
        except (TimeoutError, ApiException, aiohttp.ClientError):
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
        limit = self.settings.max_download_bytes
        if size is not None and size > limit:  # a file message declares its size
            raise MediaTooLarge(f"file of {size} bytes is over {limit}", limit)
        url = (f"{self.settings.line_data_api_base_url.rstrip('/')}/v2/bot/message/"
               f"{quote(ref, safe='')}/content")
        if self._media is None:
            self._media = Fetcher(FetchPolicy.for_platform(
                self.settings, [self.settings.line_data_api_base_url]))
        return await self._media.get(url,
                                     secret_headers={"Authorization": f"Bearer {self._token}"})

    def _timeout(self) -> aiohttp.ClientTimeout:
        """Every API call is bounded (line-bot-sdk's own default is 300 s)."""
        return aiohttp.ClientTimeout(total=self.settings.platform_timeout_seconds,
                                     connect=self.settings.platform_connect_timeout_seconds)

    async def send(self, reply: Reply, log_: DeliveryLog) -> None:
        try:
            await self._send(reply, log_)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Connection refused, reset or timed out: LINE may still be there in a moment.
            raise TransientSendError(f"LINE unreachable: {type(exc).__name__}", 2.0,
                                     code="network") from exc

    async def _send(self, reply: Reply, log_: DeliveryLog) -> None:
        parts = self.parts(reply)
        pending = [i for i in range(len(parts)) if not log_.is_sent(i)]
        if not pending:
            return
        context = _context(reply.reply_context, reply.key)
        await self._deliver(reply, parts, pending, context, log_)
        if context.mark_as_read_token:
            await self._mark_as_read(context.mark_as_read_token)

    async def _mark_as_read(self, token: str) -> None:
        """Mark the answered message (and the chat's earlier ones) read; best effort: a refused
        or lost call never fails the turn (the answer is already sent)."""
        try:
            await self._api().mark_messages_as_read_by_token(
                MarkMessagesAsReadByTokenRequest(mark_as_read_token=token),
                _request_timeout=self._timeout())
        except (TimeoutError, ApiException, aiohttp.ClientError, OSError) as exc:
            log.debug("LINE did not mark the message read: %s", type(exc).__name__)

    async def _deliver(self, reply: Reply, parts: list[OutgoingPart], pending: list[int],
                       context: LineContext, log_: DeliveryLog) -> None:
        token = context.reply_token
        fresh = bool(token) and time.time() < context.reply_token_expires_at
        if fresh and pending[0] == 0:
            batch = pending[:MAX_MESSAGES_PER_CALL]
            try:
                answer = await self._api().reply_message(ReplyMessageRequest(
                    reply_token=token, messages=[_message(reply, parts, i) for i in batch]),
                    _request_timeout=self._timeout())
                for i, sent_id in zip(batch, _sent_ids(answer, len(batch)), strict=True):
                    log_.mark_sent(i, sent_id)
                pending = pending[len(batch):]
            except ApiException as exc:
                if exc.status != 400:
                    raise _send_error(exc) from exc
                log.info("LINE refused the reply token (%s); pushing instead", exc.reason)
        for start in range(0, len(pending), MAX_MESSAGES_PER_CALL):
            batch = pending[start:start + MAX_MESSAGES_PER_CALL]
            retry_key = uuid.uuid5(_RETRY_KEY_NAMESPACE,
                                   f"{reply.key.as_path()}|{reply.in_reply_to}|{batch[0]}")
            ids: list[str | None] = [None] * len(batch)
            try:
                answer = await self._api().push_message(
                    PushMessageRequest(to=context.to,
                                       messages=[_message(reply, parts, i) for i in batch]),
                    x_line_retry_key=str(retry_key), _request_timeout=self._timeout())
                ids = _sent_ids(answer, len(batch))
            except ApiException as exc:
                if exc.status != 409:  # 409: this retry key was accepted before
                    raise _send_error(exc) from exc
            for i, sent_id in zip(batch, ids, strict=True):
                log_.mark_sent(i, sent_id)

    def format_answer(self, markdown: str) -> str:
        return markdown_to_plain(markdown)


def _message(reply: Reply, parts: list[OutgoingPart], index: int) -> TextMessage:
    """Part `index` as a text message; the answer's last part carries the 👍/👎 quick reply
    (postback actions without a display text: tapping one writes nothing in the chat)."""
    part = parts[index]
    if not (reply.feedback and part.formatted and index == len(parts) - 1):
        return TextMessage(text=part.text)
    return TextMessage(text=part.text, quick_reply=QuickReply(items=[
        QuickReplyItem(type="action", action=PostbackAction(label=name, data=data))
        for name, data in buttons(reply.feedback)]))


def _sent_ids(answer: Any, count: int) -> list[str | None]:
    """The message ids LINE gave a batch (`sentMessages`), one per message sent."""
    sent = list(getattr(answer, "sent_messages", None) or [])
    ids: list[str | None] = [str(m.id) if getattr(m, "id", None) else None for m in sent]
    return (ids + [None] * count)[:count]


def _strip_mentions(text: str, own: list[payload.Mentionee]) -> str:
    """Remove the bot's own @mentions (indices count UTF-16 code units) from the text."""
    encoded = text.encode("utf-16-le")
    for index, length in sorted(((m.index, m.length) for m in own), reverse=True):
        encoded = encoded[:index * 2] + encoded[(index + length) * 2:]
    return encoded.decode("utf-16-le", "ignore").strip()


def _send_error(exc: ApiException) -> Exception:
    status = exc.status or 0
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds((exc.headers or {}).get("Retry-After"), 2.0)
        return TransientSendError(f"LINE HTTP {status}", retry_after, code=str(status))
    return PermanentSendError(f"LINE HTTP {status}: {exc.body}", code=str(status))


def _context(context: ReplyContext | None, key: ConversationKey) -> LineContext:
    """A LINE reply context (push to the conversation's chat, when a reply carries none)."""
    if isinstance(context, LineContext):
        return context
    return LineContext(to=key.chat_id, private=bool(key.user_id))
