"""The engine contract: what a model backend takes, what it returns, and how it fails."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BaseEngine",
    "ChatTurn",
    "EngineError",
    "EngineOverloaded",
    "GenerationRequest",
    "GenerationResult",
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


class BaseEngine(ABC):
    """A model backend that turns chat requests into replies, a batch at a time.

    Contract:
    - ``__init__`` only records settings: no model is loaded, nothing heavy is imported or allocated,
      so an engine can be built in a web process or a test without a GPU.
    - ``load()`` does the heavy work (weights, processor, device placement). It is idempotent: a second
      call is a no-op. It raises ``EngineError`` when the model cannot be loaded.
    - ``generate_batch(requests)`` returns exactly one ``GenerationResult`` per request, in the same order.
      It never raises because of one bad request (undecodable image, malformed conversation, out of memory
      for that request): that request's result has ``error`` set (``"<ExceptionType>: message"``, with
      ``EngineOverloaded`` for out-of-memory) and ``text == ""``, and the other requests still get answers.
      It may load the model on first use; it may raise ``EngineError`` only when the engine as a whole is
      unusable (e.g. loading fails). It is called from one thread at a time (the batcher's); engines guard
      it with a lock anyway. Sampling settings are the model's own (its generation config); only
      ``max_new_tokens`` is per request.
    - Each result counts ``prompt_tokens`` (the request's own prompt, padding excluded, image tokens
      included), ``completion_tokens`` (tokens generated for it, up to and including a stop token) and
      ``seconds`` (wall time of the work that produced it; requests generated together share it).
    - ``health()`` is cheap and never raises: a JSON-serialisable dict describing the engine.
    """

    name: str

    @abstractmethod
    def load(self) -> None:
        """Load the model; idempotent. Heavy work belongs here, never in ``__init__``."""

    @abstractmethod
    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, same order; never raises for one bad request."""

    def health(self) -> dict:
        return {"name": getattr(self, "name", type(self).__name__)}
