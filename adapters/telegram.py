"""Telegram, on python-telegram-bot's types and its `Bot` client.

Methods go to `{TELEGRAM_API_BASE_URL}/bot{token}/{method}` and files come from
`{TELEGRAM_API_BASE_URL}/file/bot{token}/{file_path}`, as with Telegram's local Bot API server.
A `Bot` is bound to the event loop it was initialised in: one adapter instance per loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

import telegram
from telegram import constants
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from adapters.base import (
    BadSignature,
    BaseAdapter,
    DeliveryLog,
    MediaError,
    MediaTooLarge,
    MissingSignature,
    OutgoingPart,
    PayloadError,
    PermanentSendError,
    StartupCache,
    TransientSendError,
    register,
)
from adapters.feedback import buttons, label, reaction_value
from adapters.fetch import Fetcher, FetchPolicy
from adapters.payloads.telegram import TelegramUpdate
from adapters.telegram_html import markdown_to_telegram_html, visible_length
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
    TelegramContext,
    feedback_data,
    read_feedback_data,
    readable_document,
)
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: getFile refuses files above 20 MB on the public Bot API.
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
#: The update types we read (messages, and 👍/👎 as buttons and reactions); Telegram sends no
#: others once the webhook (or getUpdates) says so. `message_reaction` must be named to come.
ALLOWED_UPDATES = ("message", "callback_query", "message_reaction")
#: A RetryAfter this short is waited out in place; a longer one goes back to the queue.
INLINE_RETRY_LIMIT = 5.0


@register
class TelegramAdapter(BaseAdapter):
    platform = Platform.TELEGRAM
    max_text_length: ClassVar[int] = constants.MessageLimit.MAX_TEXT_LENGTH

    def __init__(self, settings: Settings, username: str | None = None) -> None:
        super().__init__(settings)
        assert settings.telegram_bot_token is not None
        self._token = settings.telegram_bot_token.get_secret_value()
        self.username = username
        self._bot: telegram.Bot | None = None
        self._media: Fetcher | None = None

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.telegram_enabled

    @property
    def bot_id(self) -> str:
        return self._token.split(":", 1)[0]

    # --- webhook side (pure) -------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        expected = self.settings.telegram_webhook_secret
        if expected is None or not expected.get_secret_value():
            return  # no secret configured (development only: Settings refuses it in production)
        given = headers.get(SECRET_HEADER)
        if not given:
            raise MissingSignature(f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise BadSignature(f"wrong {SECRET_HEADER}")

    def parse(self, body: bytes) -> list[InboundMessage]:
        checked = TelegramUpdate.read(body)  # the fields we read, typed; PayloadError if not
        rating = self._rating(checked)
        if rating is not None:
            return [rating]
        if checked.message is None:
            return []  # edits, channel posts...: not answered, not read further
        try:
            update = telegram.Update.de_json(checked.raw, None)
        except (AttributeError, IndexError, KeyError, OverflowError, TypeError,
                ValueError) as exc:  # a field we do not read, in a shape PTB cannot take
            raise PayloadError(f"unreadable update: {type(exc).__name__}") from None
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return []  # edits, channel posts, callbacks...: not answered
        return [m for m in [self._to_inbound(update.update_id, message)] if m is not None]

    def _rating(self, update: TelegramUpdate) -> InboundMessage | None:
        """A 👍/👎 button pressed (`callback_query`) or a reaction changed (`message_reaction`)
        as a RATING message; None for anything else (another button, another emoji)."""
        query, reaction = update.callback_query, update.message_reaction
        if query is not None:
            found = read_feedback_data(query.data)
            if found is None or query.message is None or query.from_.is_bot:
                return None
            value, turn_id = found
            return self._rating_message(
                update.update_id, query.message.chat, query.from_,
                Rating(value=value, source=RatingSource.BUTTON, turn_id=turn_id,
                       message_id=str(query.message.message_id), callback_id=query.id))
        if reaction is not None:
            emoji = [r.emoji for r in reaction.new_reaction if r.type == "emoji" and r.emoji]
            if reaction.new_reaction and not emoji:
                return None  # a custom or paid reaction: no rating
            values = {v for e in emoji if (v := reaction_value(e)) is not None} \
                if emoji else {0}
            if len(values) != 1:
                return None  # nothing that rates, or 👍 and 👎 together
            return self._rating_message(
                update.update_id, reaction.chat, reaction.user,
                Rating(value=values.pop(), source=RatingSource.REACTION,
                       message_id=str(reaction.message_id)))
        return None

    def _rating_message(self, update_id: int, chat: Any, user: Any,
                        rating: Rating) -> InboundMessage | None:
        private = chat.type == constants.ChatType.PRIVATE
        if user is None and not private:
            return None  # an anonymous group admin: nobody to key it by
        user_id = str(user.id) if user is not None else str(chat.id)
        key = ConversationKey(platform=Platform.TELEGRAM, bot_id=self.bot_id,
                              chat_id=str(chat.id), user_id=user_id if private else "")
        return InboundMessage(
            key=key, event_id=str(update_id), message_id=rating.message_id or "",
            kind=MessageKind.RATING, sender_id=user_id, rating=rating,
            language_hint=user.language_code if user is not None else None)

    def _to_inbound(self, update_id: int, message: telegram.Message) -> InboundMessage | None:
        chat = message.chat
        user = message.from_user
        assert user is not None
        private = chat.type == constants.ChatType.PRIVATE
        key = ConversationKey(
            platform=Platform.TELEGRAM,
            bot_id=self.bot_id,
            chat_id=str(chat.id),
            user_id=str(user.id) if private else "",
        )
        context = TelegramContext(
            chat_id=chat.id, message_id=message.message_id, private=private,
            thread_id=message.message_thread_id
            if message.message_thread_id is not None and message.is_topic_message else None)
        common: dict[str, Any] = dict(
            key=key,
            event_id=str(update_id),
            message_id=str(message.message_id),
            language_hint=user.language_code,
            user_name=user.full_name,
            sender_id=str(user.id),
            sent_at=message.date.timestamp(),
            reply_context=context,
        )
        if message.new_chat_members:
            if any(m.id == int(self.bot_id) for m in message.new_chat_members):
                return InboundMessage(kind=MessageKind.GREETING, **common)
            return None

        text: str | None
        text = message.text or message.caption or ""
        entities = message.entities or message.caption_entities or ()
        if not private:
            addressed, text = self._addressed(message, text, entities)
            if not addressed:
                return None
        text = self._strip_own_command_suffix(text)
        if text is None:
            return None  # a command for another bot in the group

        attachments = self._attachments(message)
        if attachments:
            return InboundMessage(text=text, attachments=attachments,
                                  album_id=message.media_group_id, **common)
        if message.text is not None:
            return InboundMessage(text=text, **common)
        if any(getattr(message, kind, None) for kind in _UNSUPPORTED):
            return InboundMessage(kind=MessageKind.UNSUPPORTED, text=text, **common)
        return None  # service messages (pins, title changes, ...)

    def _addressed(self, message: telegram.Message, text: str,
                   entities: Any) -> tuple[bool, str]:
        """In groups: a command, a reply to the bot, or a mention of it. Strips the mention."""
        bot_id = int(self.bot_id)
        reply_to = message.reply_to_message
        addressed = bool(reply_to and reply_to.from_user and reply_to.from_user.id == bot_id)
        mention = f"@{self.username}".lower() if self.username else None
        for entity in entities:
            piece = _entity_text(text, entity)
            if entity.type == constants.MessageEntityType.BOT_COMMAND and entity.offset == 0:
                addressed = True
            elif entity.type == constants.MessageEntityType.MENTION and piece.lower() == mention:
                addressed = True
            elif (entity.type == constants.MessageEntityType.TEXT_MENTION and entity.user
                  and entity.user.id == bot_id):
                addressed = True
        if mention:
            text = _remove_case_insensitive(text, mention).strip()
        return addressed, text

    def _strip_own_command_suffix(self, text: str) -> str | None:
        """'/reset@our_bot args' -> '/reset args'; None for '/cmd@other_bot'."""
        if not text.startswith("/"):
            return text
        head, _, rest = text.partition(" ")
        command, at, target = head.partition("@")
        if at and self.username and target.lower() != self.username.lower():
            return None
        return f"{command} {rest}".strip()

    def _attachments(self, message: telegram.Message) -> tuple[Attachment, ...]:
        if message.photo:
            budget = self.settings.telegram_photo_max_pixels
            byte_budget = min(self.settings.max_download_bytes, BOT_API_DOWNLOAD_LIMIT)
            sizes = sorted(message.photo, key=lambda p: p.width * p.height)
            fitting = [p for p in sizes if p.width * p.height <= budget
                       and (p.file_size or 0) <= byte_budget]
            best = fitting[-1] if fitting else sizes[0]
            return (Attachment(ref=best.file_id, mime_type="image/jpeg", size=best.file_size,
                               width=best.width, height=best.height),)
        document = message.document
        if document and (document.mime_type or "").startswith("image/"):
            return (Attachment(ref=document.file_id, mime_type=document.mime_type,
                               size=document.file_size),)
        if document and readable_document(document.mime_type, document.file_name):
            return (Attachment(kind=AttachmentKind.DOCUMENT, ref=document.file_id,
                               mime_type=document.mime_type, size=document.file_size,
                               name=(document.file_name or "")[:255] or None),)
        sound = message.voice or message.audio
        if sound and self.settings.asr_enabled:  # else: the "can't listen" notice
            return (Attachment(kind=AttachmentKind.AUDIO, ref=sound.file_id,
                               mime_type=sound.mime_type or "audio/ogg", size=sound.file_size,
                               duration=_seconds(sound.duration) if sound.duration else None),)
        return ()

    # --- worker side ---------------------------------------------------------------------------
    async def bot(self) -> telegram.Bot:
        if self._bot is None:
            base = self.settings.telegram_api_base_url.rstrip("/")
            s = self.settings
            # Explicit timeouts on every Bot API call (connect, and each read and write).
            request = HTTPXRequest(connection_pool_size=8,
                                   connect_timeout=s.platform_connect_timeout_seconds,
                                   read_timeout=s.platform_timeout_seconds,
                                   write_timeout=s.platform_timeout_seconds, pool_timeout=5.0)
            bot = telegram.Bot(self._token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
                               request=request)
            await bot.initialize()
            self._bot = bot
            self.username = bot.username
        return self._bot

    async def aclose(self) -> None:
        if self._media is not None:
            await self._media.aclose()
            self._media = None
        if self._bot is not None:
            await self._bot.shutdown()
            self._bot = None

    async def check_credentials(self) -> str:
        bot = await self.bot()
        return f"token accepted: @{bot.username} (id {bot.id})"

    async def register_webhook(self, url: str, *, drop_pending: bool = False) -> str:
        bot = await self.bot()
        secret = self.settings.telegram_webhook_secret
        await bot.set_webhook(url=url, allowed_updates=list(ALLOWED_UPDATES),
                              secret_token=secret.get_secret_value() if secret else None,
                              drop_pending_updates=drop_pending)
        return f"webhook of @{bot.username} set to {url}"

    async def webhook_info(self) -> dict:
        info = await (await self.bot()).get_webhook_info()
        return {"url": info.url, "pending_update_count": info.pending_update_count,
                "last_error_message": info.last_error_message,
                "allowed_updates": list(info.allowed_updates or ())}

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        limit = min(self.settings.max_download_bytes, BOT_API_DOWNLOAD_LIMIT)
        if size is not None and size > limit:
            raise MediaTooLarge(f"file of {size} bytes is over {limit}", limit)
        bot = await self.bot()
        try:
            file = await bot.get_file(ref)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise MediaTooLarge(exc.message, limit) from exc
            raise MediaError(exc.message) from exc
        except TelegramError as exc:
            raise MediaError(str(exc)) from exc
        if file.file_size is not None and file.file_size > limit:
            raise MediaTooLarge(f"file of {file.file_size} bytes is over {limit}", limit)
        if not file.file_path or not file.file_path.startswith(("https://", "http://")):
            # A --local Bot API server answers a path on its own disk: never read one.
            raise MediaError("Telegram gave no downloadable file URL")
        # The download goes through the fetch policy, not PTB's client (adapters/fetch.py).
        return await self._fetcher().get(file.file_path, max_bytes=limit)

    def _fetcher(self) -> Fetcher:
        if self._media is None:
            self._media = Fetcher(FetchPolicy.for_platform(
                self.settings, [self.settings.telegram_api_base_url]))
        return self._media

    async def indicate_typing(self, key: ConversationKey,
                              reply_context: ReplyContext | None) -> None:
        bot = await self.bot()
        await bot.send_chat_action(chat_id=int(key.chat_id), action=constants.ChatAction.TYPING,
                                   message_thread_id=_context(reply_context).thread_id)

    async def on_startup(self, cache: StartupCache) -> None:
        """Groups mention the bot by @username: ask getMe once, retrying with backoff."""
        with contextlib.suppress(Exception):
            self.username = await cache.get() or self.username
        delay = 1.0
        while True:
            try:
                bot = await self.bot()
                await cache.set(bot.username)
                log.info("telegram bot is @%s", bot.username)
                return
            except Exception as exc:
                log.warning("telegram getMe failed (%s); retrying in %.0fs",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300)

    def streams(self, reply_context: ReplyContext | None) -> bool:
        # Drafts (sendMessageDraft) exist in private chats only.
        return self.settings.telegram_streaming and _context(reply_context).private

    async def show_partial(self, key: ConversationKey, reply_context: ReplyContext | None,
                           text: str, turn_id: str) -> None:
        # A draft is a 30-second preview, replaced when the final message is sent; one draft
        # id per turn (a non-zero integer), so each turn's drafts replace each other only.
        bot = await self.bot()
        preview = text[-self.max_text_length:] if len(text) > self.max_text_length else text
        await bot.send_message_draft(chat_id=int(key.chat_id), draft_id=draft_id_of(turn_id),
                                     text=preview,
                                     message_thread_id=_context(reply_context).thread_id)

    async def send(self, reply: Reply, log_: DeliveryLog) -> None:
        try:
            bot = await self.bot()
        except NetworkError as exc:  # Telegram unreachable: getMe failed; try again later
            raise TransientSendError(str(exc), 2.0, code="network") from exc
        except TelegramError as exc:  # InvalidToken: retrying cannot help
            raise PermanentSendError(exc.message, code=type(exc).__name__) from exc
        parts = self.parts(reply)
        for index, part in enumerate(parts):
            if log_.is_sent(index):
                continue
            keyboard = _keyboard(reply.feedback) \
                if reply.feedback and part.formatted and index == len(parts) - 1 else None
            sent = await self._send_part(bot, reply, part, first=index == 0, keyboard=keyboard)
            log_.mark_sent(index, sent)

    async def acknowledge_rating(self, message: InboundMessage, stored: int | None) -> None:
        """Answer the button's callback query (a short thanks when stored), and replace the
        two buttons by the choice. A reaction needs nothing."""
        rating = message.rating
        if rating is None or rating.callback_id is None:
            return
        bot = await self.bot()
        await bot.answer_callback_query(
            rating.callback_id,
            text=None if stored is None else text(Text.FEEDBACK_THANKS, message.language_hint))
        if stored and rating.message_id and rating.turn_id:
            with contextlib.suppress(BadRequest):  # "message is not modified": shown already
                await bot.edit_message_reply_markup(
                    chat_id=int(message.key.chat_id), message_id=int(rating.message_id),
                    reply_markup=telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton(
                        label(stored), callback_data=feedback_data(stored, rating.turn_id))]]))

    async def _send_part(self, bot: telegram.Bot, reply: Reply, part: OutgoingPart, *,
                         first: bool, keyboard: telegram.InlineKeyboardMarkup | None = None
                         ) -> str:
        """Send one part; returns the message id Telegram gave it."""
        context = _context(reply.reply_context)
        kwargs: dict[str, Any] = {"chat_id": int(reply.key.chat_id)}
        if keyboard is not None:
            kwargs["reply_markup"] = keyboard
        if context.thread_id is not None:
            kwargs["message_thread_id"] = context.thread_id
        if first and not context.private and reply.in_reply_to.isdigit():
            kwargs["reply_parameters"] = telegram.ReplyParameters(
                message_id=int(reply.in_reply_to), allow_sending_without_reply=True)
        html = markdown_to_telegram_html(part.text) if part.formatted else None
        if html is not None and (not html.strip() or visible_length(html) > self.max_text_length):
            html = None
        for attempt in range(3):
            try:
                if html is not None:
                    try:
                        sent = await bot.send_message(
                            text=html, parse_mode=constants.ParseMode.HTML, **kwargs)
                        return str(sent.message_id)
                    except BadRequest as exc:
                        # Never lose a reply to formatting: send the same part as plain text.
                        log.warning("telegram rejected HTML (%s); sending plain text", exc.message)
                        html = None
                sent = await bot.send_message(text=part.text, **kwargs)
                return str(sent.message_id)
            except RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                if wait > INLINE_RETRY_LIMIT or attempt == 2:
                    raise TransientSendError(f"telegram flood control: {wait}s", wait,
                                             code="429") from exc
                await asyncio.sleep(wait)
            except Forbidden as exc:
                raise PermanentSendError(exc.message, code="403") from exc
            except BadRequest as exc:
                raise PermanentSendError(exc.message, code="400") from exc
            except NetworkError as exc:  # timeouts, refused connections and 5xx
                raise TransientSendError(str(exc), 2.0, code="network") from exc
            except TelegramError as exc:  # ChatMigrated, Conflict, InvalidToken, ...
                raise PermanentSendError(exc.message, code=type(exc).__name__) from exc
        raise TransientSendError("telegram flood control", 1.0, code="429")  # not reached


def _keyboard(turn_id: str) -> telegram.InlineKeyboardMarkup:
    """👍 and 👎 under the answer's last part."""
    return telegram.InlineKeyboardMarkup([[
        telegram.InlineKeyboardButton(name, callback_data=data) for name, data in buttons(turn_id)]])


_UNSUPPORTED = ("sticker", "voice", "audio", "video", "video_note", "animation", "document",
                "location", "venue", "contact", "poll", "dice", "game", "story")


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def _entity_text(text: str, entity: telegram.MessageEntity) -> str:
    # Entity offsets count UTF-16 code units.
    encoded = text.encode("utf-16-le")
    return encoded[entity.offset * 2:(entity.offset + entity.length) * 2].decode("utf-16-le",
                                                                                 "ignore")


def _remove_case_insensitive(text: str, needle: str) -> str:
    lower = text.lower()
    out, start = [], 0
    while (found := lower.find(needle, start)) != -1:
        out.append(text[start:found])
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)


def _context(context: ReplyContext | None) -> TelegramContext:
    """A Telegram reply context (a private chat's, when a reply carries none)."""
    return context if isinstance(context, TelegramContext) else TelegramContext(chat_id=0,
                                                                                 message_id=0)


def draft_id_of(turn_id: str) -> int:
    """The draft id of a turn's streamed previews: non-zero, stable, from the turn id."""
    try:
        return int(turn_id[:8], 16) or 1
    except ValueError:
        return (zlib.crc32(turn_id.encode()) & 0x7FFFFFFF) or 1
