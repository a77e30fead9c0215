"""The adapter contract: everything platform-specific sits behind `BaseAdapter`.

Exception tree (what callers catch):

    AdapterError
     ├── SignatureError          the webhook is not from the platform
     │    ├── MissingSignature   no signature at all            -> 401
     │    └── BadSignature       a signature that does not match -> 403
     ├── PayloadError            the body is not a payload we can read -> 400
     ├── MediaError              an attachment could not be fetched
     │    └── MediaTooLarge      over the platform's or our byte limit
     └── SendError               a reply could not be sent
          ├── TransientSendError try again after `retry_after` seconds (rate limit, 5xx)
          └── PermanentSendError never retry (the user blocked the bot, a bad chat)

One subclass per platform registers itself with `@register`; `adapter_class(platform)` finds it.
`verify` and `parse` are pure and synchronous (they run in the webhook); `fetch_media`, `send`
and `indicate_typing` are coroutines that run in the I/O worker, each adapter instance bound to
one event loop. Every adapter takes its base URL from the settings, so a test or a local server
(Telegram's local Bot API server, a proxy) can stand in for the platform.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from adapters.textsplit import split_text
from bot.kernel.messages import ConversationKey, InboundMessage, Platform, Reply, ReplyContext
from bot.kernel.settings import Settings


class AdapterError(Exception):
    """Base of every error an adapter raises on purpose."""


class SignatureError(AdapterError):
    status_code: int = 403

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class MissingSignature(SignatureError):
    status_code = 401


class BadSignature(SignatureError):
    status_code = 403


class PayloadError(AdapterError):
    """The webhook body is malformed."""


class MediaError(AdapterError):
    """An attachment could not be fetched."""


class MediaTooLarge(MediaError):
    def __init__(self, message: str, limit_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class SendError(AdapterError):
    """A reply could not be sent; `code` names the platform's error (an HTTP or API code)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TransientSendError(SendError):
    def __init__(self, message: str, retry_after: float = 1.0, code: str = "") -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Retrying cannot help: log it and stop."""


def retry_after_seconds(value: str | None, default: float) -> float:
    """A `Retry-After` header in seconds, in either form HTTP allows (delta-seconds or an
    HTTP date); `default` when absent or unreadable, never negative."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


@dataclass(frozen=True)
class OutgoingPart:
    """One message to send: a piece of a notice (plain) or of the answer (formatted)."""

    text: str
    formatted: bool


class DeliveryLog(Protocol):
    """Remembers which parts of a reply went out, so that a retried send skips them."""

    def is_sent(self, part: int) -> bool: ...

    def mark_sent(self, part: int, message_id: str | None = None) -> None:
        """The part went out, as the platform's message `message_id` (when it gave one)."""


class StartupCache(Protocol):
    """A small value an adapter keeps across restarts (in Redis, given by the API)."""

    async def get(self) -> str | None: ...

    async def set(self, value: str) -> None: ...


class BaseAdapter(ABC):
    platform: ClassVar[Platform]
    #: The longest text one message may carry on this platform, measured by `text_length`.
    max_text_length: ClassVar[int]
    text_length: ClassVar[Callable[[str], int]] = staticmethod(len)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def enabled(cls, settings: Settings) -> bool:
        """Whether the operator configured this platform's credentials."""

    @property
    @abstractmethod
    def bot_id(self) -> str:
        """This bot's id on the platform (part of every ConversationKey)."""

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise a `SignatureError` unless the raw body comes from the platform."""

    @abstractmethod
    def parse(self, body: bytes) -> list[InboundMessage]:
        """Turn a webhook body into messages; [] for events we don't answer.

        Raises `PayloadError` for a body that is not valid JSON or not the platform's shape.
        """

    def challenge(self, params: Mapping[str, str]) -> str:
        """Answer the platform's webhook verification (GET); `SignatureError` when refused."""
        raise SignatureError("this platform has no webhook verification handshake", 405)

    def format_answer(self, markdown: str) -> str:
        """The model's Markdown as this platform shows it (before splitting)."""
        return markdown

    def parts(self, reply: Reply) -> list[OutgoingPart]:
        """The reply as messages within the platform's limit; indices are stable across retries."""
        limit, length = self.max_text_length, type(self).text_length
        out = [OutgoingPart(piece, False) for notice in reply.notices
               for piece in split_text(notice, limit, length=length)]
        if reply.text.strip():
            out += [OutgoingPart(piece, True)
                    for piece in split_text(self.format_answer(reply.text), limit, length=length)]
        return out

    def typing_interval(self) -> float:
        """How often `indicate_typing` should be repeated while the model works."""
        return self.settings.typing_interval_seconds

    async def on_startup(self, cache: StartupCache) -> None:
        """What the platform needs once the API starts, run in the background (Telegram:
        learn the bot's @username); it retries by itself and never raises."""
        return None

    def streams(self, reply_context: ReplyContext | None) -> bool:
        """Whether this chat is shown the answer while it is generated (`show_partial`)."""
        return False

    async def show_partial(self, key: ConversationKey, reply_context: ReplyContext | None,
                           text: str, turn_id: str) -> None:
        """Show the answer so far of the turn `turn_id` (streaming), where the platform can;
        else show typing."""
        await self.indicate_typing(key, reply_context)

    async def language_hint(self, key: ConversationKey) -> str | None:
        """The user's language as the platform knows it, asked on first contact (may call out)."""
        return None

    async def register_webhook(self, url: str, *, drop_pending: bool = False) -> str:
        """Point the platform at `url` where its API allows it, else check the credentials
        with a harmless call and say where to paste the URL. Returns a line for the operator."""
        return f"{await self.check_credentials()}; set the webhook URL to {url} in the console"

    async def webhook_info(self) -> dict:
        """What the platform says about our webhook (or the credentials check's result)."""
        return {"credentials": await self.check_credentials()}

    async def check_credentials(self) -> str:
        """A harmless API call proving the credentials work; raises `AdapterError` if not."""
        raise NotImplementedError

    @abstractmethod
    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        """Download an attachment; `MediaTooLarge` beyond the byte limit."""

    @abstractmethod
    async def send(self, reply: Reply, log: DeliveryLog) -> None:
        """Send `self.parts(reply)` in order, skipping the indices `log` has marked sent.

        Raises `TransientSendError` (retry later) or `PermanentSendError`.
        """

    async def acknowledge_rating(self, message: InboundMessage, stored: int | None) -> None:
        """Show the person their rating was taken (`stored`: the rating kept, None: the answer
        is unknown), where the platform expects it (Telegram answers the callback query and
        replaces the buttons); never a text message. Most platforms need nothing."""
        return None

    @abstractmethod
    async def indicate_typing(self, key: ConversationKey,
                              reply_context: ReplyContext | None) -> None:
        """Show that the bot is working on an answer; failures are ignored by callers."""

    async def aclose(self) -> None:  # noqa: B027  (optional hook: most adapters hold nothing)
        """Release clients bound to the current event loop."""


_REGISTRY: dict[Platform, type[BaseAdapter]] = {}


def register(cls: type[BaseAdapter]) -> type[BaseAdapter]:
    _REGISTRY[cls.platform] = cls
    return cls


#: The module that registers each platform's adapter, imported when first asked for.
_MODULES: dict[Platform, str] = {
    Platform.TELEGRAM: "adapters.telegram", Platform.LINE: "adapters.line",
    Platform.WHATSAPP: "adapters.whatsapp", Platform.CONSOLE: "adapters.local",
    Platform.WEB: "adapters.local",
}


def adapter_class(platform: Platform) -> type[BaseAdapter]:
    if platform not in _REGISTRY:
        importlib.import_module(_MODULES[platform])
    return _REGISTRY[platform]
