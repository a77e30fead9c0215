"""The guard contract: what a moderation backend is asked, what it answers, and how it fails.

A guard reads what a person sent (text and photos) before the chat model sees it, and the
model's answer before the person sees it, and says whether each is safe. It never writes a
reply itself: `workers.moderation` turns a verdict into a refusal, a metric and a log entry.

    GuardError
     ├── GuardUnavailable   no verdict this time: the server is down or too slow, the model
     │                      failed to load or to generate (GUARD_FAIL decides what happens)
     └── GuardConfigError   settings that can never work (a missing keywords file, a bad
                            regular expression, a format the backend cannot serve)

An answer the guard gives but that we cannot read is *not* an error: it is "unsafe" (fail
closed), as AI Singapore's model card asks ("unsafe unless the answer starts with `safe`").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BaseGuard",
    "GuardConfigError",
    "GuardError",
    "GuardRequest",
    "GuardUnavailable",
    "GuardVerdict",
    "Label",
]

Label = Literal["safe", "unsafe", "controversial"]

#: What a guard reads at most of one text: its cost grows with the length, and a verdict on the
#: newest few thousand characters is what matters.
MAX_GUARD_CHARS = 8000


@dataclass(frozen=True)
class GuardRequest:
    """One check. Without `response` it checks the person's `prompt` (and `images`); with it,
    the answer `response` to that prompt."""

    prompt: str
    images: tuple[bytes, ...] = ()
    response: str | None = None
    #: The conversation's language, for guards with per-language rules (keywords).
    language: str | None = None

    @property
    def side(self) -> str:
        return "input" if self.response is None else "output"


@dataclass(frozen=True)
class GuardVerdict:
    label: Label
    #: The guard's categories, when it names them (Qwen3Guard, keyword sections).
    categories: tuple[str, ...] = ()
    #: The guard's own answer, for tests and debugging (never logged: it may quote the person).
    raw: str = ""
    seconds: float = 0.0

    @property
    def safe(self) -> bool:
        return self.label == "safe"


class GuardError(Exception):
    """A guard could not give a verdict."""


class GuardUnavailable(GuardError):
    """No verdict this time (unreachable, too slow, failed to load or generate)."""


class GuardConfigError(GuardError):
    """The guard's settings cannot work."""


class BaseGuard(ABC):
    """A moderation backend.

    Contract:
    - ``__init__`` only records settings; ``load()`` does the heavy work (a model, a server
      check, a file) and is idempotent; it raises ``GuardConfigError`` for settings that can
      never work and ``GuardUnavailable`` for what may work later.
    - ``check(request)`` returns a ``GuardVerdict`` or raises ``GuardUnavailable``; it may be
      called from many threads at once, and loads on first use.
    - ``check_many(requests)`` answers several at once (a batch where the backend can), one
      verdict or ``GuardUnavailable`` per request, in order.
    - ``health()`` is cheap and never raises.
    """

    name: str = "guard"

    def load(self) -> None:  # noqa: B027 - most guards have nothing to load
        """Prepare the guard; idempotent."""

    @abstractmethod
    def check(self, request: GuardRequest) -> GuardVerdict:
        """The verdict on one request; raises ``GuardUnavailable``."""

    def check_many(self, requests: Sequence[GuardRequest]) -> list[GuardVerdict | GuardError]:
        out: list[GuardVerdict | GuardError] = []
        for request in requests:
            try:
                out.append(self.check(request))
            except GuardError as exc:
                out.append(exc)
        return out

    def health(self) -> dict:
        return {"name": self.name}


def clip(text: str, limit: int = MAX_GUARD_CHARS) -> str:
    """The newest `limit` characters of `text` (an answer's end is what a guard must see)."""
    return text if len(text) <= limit else text[-limit:]
