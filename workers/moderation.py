"""The moderation steps of a turn: the guard on both sides of the model, and the abuse controls.

`Moderator` wraps the configured guard (`workers.models.guard`):

- `check_input(text, images, language, history)` before generation, `check_output(text, answer,
  language)` after it. Each returns a `GuardDecision` (side, label, categories, latency) that is
  counted (``sealion_guard_decisions_total{side,label}``, ``sealion_guard_seconds{side}``),
  stored with the turn in the conversation log, and says whether the turn is `blocked`.
- The guard judges the whole text (`BaseGuard.check_whole`: overlapping windows, unsafe if any
  window is), up to `guard_max_chars`, the most a turn or an answer can hold under the message
  limits; a text beyond it is refused unread, whatever GUARD_FAIL says.
- A guard that cannot answer gives the label "error": with GUARD_FAIL=closed the turn is
  blocked (the person gets the apology), with "open" it goes through unchecked; both are
  counted in ``sealion_guard_failures_total{side,mode}``.
- `DraftChecker` sits between a streamed answer and its Telegram draft: only text the guard
  found safe is shown, and a flagged draft is cleared (an empty draft) for the rest of the turn.

`AbuseScreen` runs before a turn is planned: the block list, then the per-person rate limit
(`storage.abuse`). Messages it holds back are acknowledged and never reach the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from adapters.local import MAX_TEXT
from bot.kernel.texts import Text, text
from workers.models.guard.base import (
    WINDOW_OVERLAP,
    BaseGuard,
    GuardError,
    GuardRequest,
    GuardVerdict,
    clip,
)

log = logging.getLogger(__name__)

__all__ = ["DraftChecker", "GuardDecision", "Moderator", "guard_max_chars"]

#: Labels that are not "safe" but are not the content's fault either.
ERROR_LABEL = "error"
#: The category of a text refused unread for its length.
TOO_LONG = "too long to check"
#: What an input check reads of the person's earlier turns, before the new text.
HISTORY_CHARS = WINDOW_OVERLAP
#: Speech, transcribed, is at most this many characters a second (fast speech is about 20).
SPEECH_CHARS_PER_SECOND = 30
#: A generated token is at most this many characters in an answer worth sending (about 4 on
#: average; runs of spaces or punctuation are single tokens of up to a few dozen).
TOKEN_CHARS = 32


def guard_max_chars(max_pending_messages: int = 50, max_new_tokens: int = 1024,
                    asr_max_seconds: float = 300.0) -> int:
    """The longest text the guard must read whole (the defaults are the settings' own).

    A turn joins at most MAX_PENDING_MESSAGES messages (storage.conversations drops the oldest
    beyond it), each at most the longest a face accepts: the web chat's 16,000 characters
    (`adapters.local.MAX_TEXT`; Telegram allows 4,096, LINE 5,000), or a voice note's
    transcript of ASR_MAX_SECONDS. An input check adds `HISTORY_CHARS` of earlier turns. An
    answer is at most MAX_NEW_TOKENS tokens. With the defaults, 802,050 characters: 134
    windows for a model guard, in batches. Beyond it no real turn reaches, only a text grown
    to make the guard's work unbounded, so it is refused unread.
    """
    message = max(MAX_TEXT, int(asr_max_seconds * SPEECH_CHARS_PER_SECOND))
    turn = max_pending_messages * (message + 1) + HISTORY_CHARS
    return max(turn, max_new_tokens * TOKEN_CHARS)


@dataclass(frozen=True)
class GuardDecision:
    side: str  # "input" | "output" | "draft"
    label: str  # "safe" | "unsafe" | "controversial" | "error"
    categories: tuple[str, ...] = ()
    latency_ms: int = 0
    #: The turn must not go on: refused (a flagged label) or the guard failed closed.
    blocked: bool = False

    @property
    def failed(self) -> bool:
        return self.label == ERROR_LABEL

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuardDecision:
        return cls(side=str(data["side"]), label=str(data["label"]),
                   categories=tuple(data.get("categories") or ()),
                   latency_ms=int(data.get("latency_ms") or 0),
                   blocked=bool(data.get("blocked")))


class Moderator:
    """The configured guard, GUARD_INPUT/GUARD_OUTPUT, GUARD_FAIL and the refusal text."""

    def __init__(self, guard: BaseGuard | None, *, check_input: bool = True,
                 check_output: bool = True, fail: str = "closed",
                 block_controversial: bool = False, blocked_reply: str | None = None,
                 metrics: Any = None, max_chars: int | None = None) -> None:
        self.guard = guard
        self.input_on = guard is not None and check_input
        self.output_on = guard is not None and check_output
        self.fail = fail
        self.block_controversial = block_controversial
        self.blocked_reply = blocked_reply
        self.metrics = metrics
        #: The longest text checked (`guard_max_chars`); a longer one is refused unread.
        self.max_chars = guard_max_chars() if max_chars is None else max_chars

    @classmethod
    def from_settings(cls, settings: Any, guard: BaseGuard | None,
                      metrics: Any = None) -> Moderator:
        return cls(guard, check_input=settings.guard_input, check_output=settings.guard_output,
                   fail=settings.guard_fail,
                   block_controversial=settings.guard_block_controversial,
                   blocked_reply=settings.guard_blocked_reply, metrics=metrics,
                   max_chars=guard_max_chars(settings.max_pending_messages,
                                             settings.max_new_tokens, settings.asr_max_seconds))

    def refusal(self, language: str) -> str:
        """What a person gets instead of a flagged message's answer or a flagged answer."""
        return self.blocked_reply or text(Text.GUARD_REFUSAL, language)

    def check_input(self, prompt: str, images: Sequence[bytes] = (),
                    language: str | None = None,
                    history: Sequence[str] = ()) -> GuardDecision | None:
        """The guard on the person's new text (all of it) and photos.

        `history` is the person's earlier user turns in the conversation, oldest first: their
        newest `HISTORY_CHARS` characters are read before the new text, joined by a line break,
        so a request split over two messages is read in one window. Only the person's own
        words are read (the answers were checked as outputs), only the newest, so that one
        earlier turn cannot weigh on every later one, and each of them already passed this
        check alone (a turn refused on input never enters the history).
        """
        if not self.input_on:
            return None
        context = clip("\n".join(t for t in history if t), HISTORY_CHARS)
        text = f"{context}\n{prompt}" if context else prompt
        return self._check("input", GuardRequest(text, tuple(images), None, language))

    def check_output(self, prompt: str, answer: str, language: str | None = None,
                     side: str = "output") -> GuardDecision | None:
        """The guard on the whole answer (windows of it, each with the prompt's end)."""
        if not self.output_on or not answer.strip():
            return None
        return self._check(side, GuardRequest(prompt, (), answer, language))

    def _verdict(self, request: GuardRequest) -> GuardVerdict:
        assert self.guard is not None
        checked = request.prompt if request.response is None else request.response
        if len(checked) > self.max_chars:
            # Fail-open is for a guard that is down, not for a text grown past what it reads.
            return GuardVerdict("unsafe", (TOO_LONG,))
        return self.guard.check_whole(request)

    def _check(self, side: str, request: GuardRequest) -> GuardDecision:
        started = time.perf_counter()
        try:
            verdict = self._verdict(request)
        except GuardError as exc:
            seconds = time.perf_counter() - started
            log.warning("guard (%s) gave no verdict: %s; failing %s", side, exc, self.fail)
            self._count("guard_failures", side=side, mode=self.fail)
            decision = GuardDecision(side, ERROR_LABEL, (), round(seconds * 1000),
                                     blocked=self.fail == "closed")
        else:
            seconds = time.perf_counter() - started
            blocked = verdict.label == "unsafe" or (
                verdict.label == "controversial" and self.block_controversial)
            decision = GuardDecision(side, verdict.label, verdict.categories,
                                     round(seconds * 1000), blocked=blocked)
        self._count("guard_decisions", side=side, label=decision.label)
        if self.metrics is not None:
            self.metrics.observe("guard_seconds", seconds, side=side)
        if decision.blocked:
            log.info("guard (%s): %s %s", side, decision.label, ",".join(decision.categories))
        return decision

    def _count(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, **labels)


class DraftChecker:
    """Shows a streamed answer only as far as the guard has found it safe.

    `offer(text)` is called with the answer so far (from the generating thread, often); a
    background thread checks the newest text whenever it is free and hands safe text to
    `publish`. Once a draft is flagged, `publish("")` clears it and nothing more is shown;
    `flagged` tells the caller. `close()` stops the thread.
    """

    def __init__(self, moderator: Moderator, prompt: str, language: str | None,
                 publish: Callable[[str], None]) -> None:
        self._moderator = moderator
        self._prompt = prompt
        self._language = language
        self._publish = publish
        self._latest = ""
        self._checked = ""
        self._cond = threading.Condition()
        self._closed = False
        self.flagged = False
        self.decisions: list[GuardDecision] = []
        self._thread = threading.Thread(target=self._run, name="draft-guard", daemon=True)
        self._thread.start()

    def offer(self, draft: str) -> None:
        with self._cond:
            self._latest = draft
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._latest != self._checked)
                if self._closed or self.flagged:
                    return
                draft = self._checked = self._latest
            decision = self._moderator.check_output(self._prompt, draft, self._language,
                                                    side="draft")
            if decision is not None:
                self.decisions.append(decision)
            if decision is not None and decision.blocked:
                self.flagged = True
                self._safe_publish("")
                return
            self._safe_publish(draft)

    def _safe_publish(self, draft: str) -> None:
        try:
            self._publish(draft)
        except Exception:  # a draft is a courtesy: never fail the answer for it
            log.debug("draft not published", exc_info=True)
