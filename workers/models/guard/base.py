"""The guard host's contract: what a moderation backend is asked, what it answers, how it fails.

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

A guard model reads at most `MAX_GUARD_CHARS` of a text in one check, and a text can be far
longer (a turn joins many messages; an answer runs to MAX_NEW_TOKENS). `BaseGuard.check_whole`
is the verdict on a whole text: overlapping windows of it (`windows`), checked together
(`check_many`: one batch, or bounded concurrent calls), unsafe when any window is.

`BaseGuard` is the guard's `workers.models.host.ModelHost` (load, warm-up, health): a guard
with settings that can never work is `failed`, one whose server does not answer `unavailable`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from workers.models.host import HostKind, HostState, ModelHost

__all__ = [
    "BaseGuard",
    "GuardConfigError",
    "GuardError",
    "GuardRequest",
    "GuardUnavailable",
    "GuardVerdict",
    "Label",
    "window_count",
    "windows",
]

Label = Literal["safe", "unsafe", "controversial"]

#: What a guard model reads of one text in one check (its cost grows with the length); a longer
#: text is read as overlapping windows of this size (`BaseGuard.check_whole`).
MAX_GUARD_CHARS = 8000
#: How much neighbouring windows share: any passage up to this long lies whole in one window.
WINDOW_OVERLAP = MAX_GUARD_CHARS // 4


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


class BaseGuard(ModelHost):
    """A moderation backend.

    Contract:
    - ``__init__`` only records settings; ``load()`` does the heavy work (a model, a server
      check, a file) and is idempotent; it raises ``GuardConfigError`` for settings that can
      never work and ``GuardUnavailable`` for what may work later (and, once the guard failed,
      ``GuardUnavailable`` with the reason).
    - ``check(request)`` returns a ``GuardVerdict`` or raises ``GuardUnavailable``; it may be
      called from many threads at once, and loads on first use. It reads at most
      ``window_chars`` of each text (a model guard's budget; the end of a longer text): a
      caller that needs a verdict on the whole text calls ``check_whole``.
    - ``check_many(requests)`` answers several at once (a batch where the backend can), one
      verdict or ``GuardUnavailable`` per request, in order.
    - ``check_whole(request)`` is the verdict on everything in the request, however long.
    - ``health()`` is cheap and never raises.
    """

    kind: ClassVar[HostKind] = HostKind.GUARD
    unavailable_error: ClassVar[type[Exception]] = GuardUnavailable
    name: str = "guard"
    #: How much of a text one `check` reads; None: all of it (no windows needed).
    window_chars: int | None = MAX_GUARD_CHARS

    def _load(self) -> None:  # noqa: B027 - most guards have nothing to load
        """Prepare the guard (a model, a server check, a file)."""

    def failure_state(self, exc: BaseException) -> HostState:
        if isinstance(exc, GuardConfigError):
            return HostState.FAILED  # settings that can never work, on a server or not
        return super().failure_state(exc)

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

    def split(self, request: GuardRequest) -> list[GuardRequest]:
        """The checks that together read all of `request`: the checked text (the prompt, or
        for an output check the response) cut into `windows`. Photos go with the last window
        (with the text nearest them, as one check would have read them); each window of an
        answer keeps the prompt, which the format clips to the guard's budget."""
        if self.window_chars is None:
            return [request]
        if request.response is None:
            parts = windows(request.prompt, self.window_chars)
            return [replace(request, prompt=part, images=request.images if last else ())
                    for last, part in _mark_last(parts)]
        return [replace(request, response=part)
                for part in windows(request.response, self.window_chars)]

    def check_whole(self, request: GuardRequest) -> GuardVerdict:
        """The verdict on all of `request`: its windows (`split`), checked together
        (`check_many`).

        Unsafe if any window is unsafe (with every flagged window's categories), even when
        other windows got no verdict; otherwise the first ``GuardUnavailable`` is raised when
        a window got no verdict (GUARD_FAIL decides); then controversial if any window is;
        else safe. The caller bounds the text's length (`window_count` says the cost first).
        """
        started = time.perf_counter()
        parts = self.split(request)
        verdicts = [self.check(parts[0])] if len(parts) == 1 else self.check_many(parts)
        found = [v for v in verdicts if isinstance(v, GuardVerdict)]
        failed = [v for v in verdicts if not isinstance(v, GuardVerdict)]
        flagged = [v for v in found if v.label == "unsafe"]
        if not flagged and failed:
            raise failed[0]
        flagged = flagged or [v for v in found if v.label == "controversial"]
        seconds = time.perf_counter() - started
        if not flagged:
            return replace(found[0], seconds=seconds)
        categories = tuple(dict.fromkeys(c for v in flagged for c in v.categories))
        return GuardVerdict(flagged[0].label, categories, flagged[0].raw, seconds)


def window_count(length: int, size: int = MAX_GUARD_CHARS, overlap: int = WINDOW_OVERLAP) -> int:
    """How many `windows` a text of `length` characters makes (known before any work)."""
    if length <= size:
        return 1
    stride = size - overlap
    return -(-(length - size) // stride) + 1


def windows(text: str, size: int = MAX_GUARD_CHARS, overlap: int = WINDOW_OVERLAP) -> list[str]:
    """`text` as windows of at most `size` characters, each starting `size - overlap` after the
    one before, the last one ending with the text (and as long as the others). So every
    passage of up to `overlap` characters lies whole inside some window, and none is read by
    more than ``ceil(size / (size - overlap))`` windows."""
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size}), got {overlap}")
    if len(text) <= size:
        return [text]
    stride = size - overlap
    starts = list(range(0, len(text) - size, stride)) + [len(text) - size]
    assert len(starts) == window_count(len(text), size, overlap)
    return [text[start:start + size] for start in starts]


def _mark_last(items: list[str]) -> list[tuple[bool, str]]:
    return [(i == len(items) - 1, item) for i, item in enumerate(items)]


def clip(text: str, limit: int = MAX_GUARD_CHARS) -> str:
    """The newest `limit` characters of `text`: one check's budget, for the context a check
    carries (an output check's prompt); `BaseGuard.check_whole` reads the checked text whole."""
    return text if len(text) <= limit else text[-limit:]
