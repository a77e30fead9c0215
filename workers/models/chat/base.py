"""The chat host's contract: what a chat model takes, what it returns, and how it fails.

`BaseEngine` is the chat model's `workers.models.host.ModelHost`: `load`, `warm_up`, `health`,
and `generate` (one request; what the turn calls) or `submit` (its future). Its two hosts:
`workers.models.chat.transformers.TransformersEngine` (in process, behind the one batcher) and
`workers.models.chat.openai.OpenAIEngine` (an OpenAI-compatible server, which batches itself).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from workers.models.host import HostKind, ModelHost

__all__ = [
    "BaseEngine",
    "ChatTurn",
    "EngineError",
    "EngineOverloaded",
    "GenerationRequest",
    "GenerationResult",
    "normalize_turns",
]


@dataclass(frozen=True)
class ChatTurn:
    role: Literal["user", "assistant"]
    text: str
    images: tuple[bytes, ...] = ()  # encoded image files (JPEG/PNG bytes)


@dataclass(frozen=True)
class GenerationRequest:
    system: str  # system prompt (may be "")
    turns: tuple[ChatTurn, ...]  # conversation, oldest first, ends with a user turn
    max_new_tokens: int = 512
    #: Called now and then with the answer so far (streaming); engines that cannot stream
    #: ignore it. In-process only: it never crosses Celery.
    on_partial: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None  # set when this request failed; text is then ""
    batch_size: int = 1  # how many requests were generated together with this one


class EngineError(Exception):
    """The engine cannot serve: it failed to load, or a request failed in a way the engine reports."""


class EngineOverloaded(EngineError):
    """Out of (accelerator) memory: the request may succeed later, or in a smaller batch."""


class BaseEngine(ModelHost):
    """The chat model's host: chat requests in, replies out.

    Contract (beside `ModelHost`'s load, warm-up and health):
    - ``load()`` raises ``EngineError`` when the model cannot be loaded (or the server does not
      serve it); once the host has failed, every later ``load()`` raises it with the reason.
    - ``submit(request)`` returns a future of the request's ``GenerationResult``; ``generate``
      waits for it. Both may be called from many threads at once; neither raises because of one
      bad request (undecodable image, malformed conversation, out of memory for that request):
      that request's result has ``error`` set (``"<ExceptionType>: message"``, with
      ``EngineOverloaded`` for out-of-memory) and ``text == ""``. They load on first use. An
      in-process host batches the requests of all threads (`workers.models.batching`).
    - ``generate_batch(requests)`` generates the given requests together, now: exactly one
      result per request, in the same order, the same failure rules. It raises
      ``EngineError`` only when the host as a whole cannot serve.
    - Sampling settings are the model's own (its generation config); only ``max_new_tokens``
      is per request.
    - Each result counts ``prompt_tokens`` (the request's own prompt, padding excluded, image
      tokens included), ``completion_tokens`` (tokens generated for it, up to and including a
      stop token) and ``seconds`` (wall time of the work that produced it; requests generated
      together share it), and ``batch_size``.
    """

    kind: ClassVar[HostKind] = HostKind.CHAT
    unavailable_error: ClassVar[type[Exception]] = EngineError

    @abstractmethod
    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, same order; never raises for one bad request."""

    @abstractmethod
    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """The request's result, later; the future never raises for one bad request."""

    def generate(self, request: GenerationRequest,
                 timeout: float | None = None) -> GenerationResult:
        """One request's result (the turn's call)."""
        return self.submit(request).result(timeout)


def normalize_turns(turns: Sequence[ChatTurn]) -> list[ChatTurn]:
    """The conversation as every chat host sends it: consecutive turns of one role merged, and
    assistant turns before the first user turn dropped; raises for one that cannot be answered.

    Gemma 3's template requires strict user/model alternation starting with the user; chat
    histories (several user messages in a row, a bot greeting first) don't always have it. Doing
    it for every model keeps replies independent of which model serves.
    """
    merged: list[ChatTurn] = []
    for turn in turns:
        if not isinstance(turn, ChatTurn):
            raise TypeError(f"turn must be a ChatTurn, not {type(turn).__name__}")
        if turn.role not in ("user", "assistant"):
            raise ValueError(f"unknown role {turn.role!r}")
        if not merged and turn.role == "assistant":
            continue
        if merged and merged[-1].role == turn.role:
            last = merged[-1]
            text = "\n\n".join(t for t in (last.text, turn.text) if t)
            merged[-1] = ChatTurn(role=last.role, text=text,
                                  images=tuple(last.images) + tuple(turn.images))
        else:
            merged.append(turn)
    if not merged or merged[-1].role != "user":
        raise ValueError("conversation must end with a user turn")
    return merged
