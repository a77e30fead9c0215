"""Test doubles for the turn service: a recording adapter and a scripted engine (the platform
and the model are the only stand-ins in these unit tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from adapters.base import BaseAdapter, DeliveryLog
from bot.kernel.messages import ConversationKey, InboundMessage, Platform, Reply
from bot.kernel.settings import Settings
from workers.models.chat.base import GenerationRequest, GenerationResult


class RecordingAdapter(BaseAdapter):
    """Collects what the service sends; `fail_with` makes the next sends raise (a None in it
    lets that send through)."""

    platform = Platform.TELEGRAM
    max_text_length: ClassVar[int] = 4096

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[str] = []
        #: Every reply given to `send` (its 👍/👎 `feedback` included).
        self.replies: list[Reply] = []
        self.fail_with: list[Exception | None] = []

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return True

    @property
    def bot_id(self) -> str:
        return "1"

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        pass

    def parse(self, body: bytes) -> list[InboundMessage]:
        return []

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        raise AssertionError("no media in these tests")

    async def send(self, reply: Reply, log: DeliveryLog) -> None:
        self.replies.append(reply)
        for index, part in enumerate(self.parts(reply)):
            if log.is_sent(index):
                continue
            failure = self.fail_with.pop(0) if self.fail_with else None
            if failure is not None:
                raise failure
            self.sent.append(part.text)
            log.mark_sent(index, str(len(self.sent)))  # the platform's message id

    async def indicate_typing(self, key: ConversationKey, reply_context: dict) -> None:
        pass


class ScriptedEngine:
    """Answers from a list, and keeps the requests it was given."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        return GenerationResult(text=self.answers.pop(0), completion_tokens=5, seconds=0.1)
