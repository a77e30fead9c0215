"""Delivery: the reply composed, sent in parts, logged, and the turn written down and released.

    compose   the turn's notices, then the answer; the refusal for a turn the guard stopped;
              the apology when the model gave nothing
    send      the parts not sent yet (each marked in Redis once the platform took it, so a
              retried or resumed delivery never sends a part twice); a permanent refusal is
              logged and counted, a transient one raised for the task to retry
    finish    the log first (once per turn id), then, in one script, the history, the
              conversation's language and the release (`ConversationStore.finish_turn`): a
              crash at any point loses nothing and doubles nothing; the answer's platform
              message ids (kept on the sent markers) go into the log with it
    rate      a 👍/👎 (`workers.tasks.record_rating`) stored against its answer, outside any turn
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from adapters.base import BaseAdapter, PermanentSendError
from bot.kernel.messages import ConversationKey, InboundMessage, Platform, Reply
from bot.kernel.prompt import clean_reply
from bot.kernel.texts import Text, text
from storage.conversations import ConversationStore, Finished
from storage.history import HistoryEntry, RedisHistory
from storage.log import ConversationLog, TurnRecord
from storage.metrics import RedisMetrics
from workers.faults import FaultInjector
from workers.images import make_thumbnail
from workers.protocol import GenerationOutcome, Handoff, Refusal, Turn
from workers.turn.budget import MonthlyBudget
from workers.turn.hearing import Hearing
from workers.turn.knowledge import cited, record, sources_line
from workers.turn.moderation import Moderation

log = logging.getLogger(__name__)

#: Where answers carry 👍/👎 buttons (FEEDBACK_BUTTONS).
FEEDBACK_PLATFORMS = frozenset({Platform.TELEGRAM, Platform.LINE, Platform.WHATSAPP})


class DeliveryLog:
    """Which parts of a reply went out, kept in Redis under the turn id (`part_key`). A
    delivery known to be the turn's first (`fresh`) reads nothing: no part went out yet."""

    def __init__(self, store: ConversationStore, turn_id: str, *, fresh: bool = False,
                 counter: str | None = None) -> None:
        self._store, self._turn_id, self._fresh = store, turn_id, fresh
        #: The month's sent count each part is added to (`workers.turn.budget`), if any.
        self._counter = counter
        self._sent: dict[int, str | None] | None = {} if fresh else None

    def is_sent(self, part: int) -> bool:
        if self._sent is None:
            self._sent = self._store.sent_part_ids(self._turn_id, part + 16)
        elif part not in self._sent and not self._fresh and part >= max(self._sent, default=-1):
            # Read beyond what the first look covered (a reply of many parts).
            self._sent.update(self._store.sent_part_ids(self._turn_id, part + 16))
        return part in self._sent

    def mark_sent(self, part: int, message_id: str | None = None) -> None:
        self._store.mark_sent(self._turn_id, part, self._counter, message_id)
        if self._sent is not None:
            self._sent[part] = message_id

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The platform's ids of the parts known sent, in order (those it named)."""
        return tuple(v for _, v in sorted((self._sent or {}).items()) if v)


class Delivery:
    def __init__(self, *, model_id: str, history_ttl: int, keep_audio: bool,
                 store: ConversationStore, history: RedisHistory, log: ConversationLog,
                 adapters: Callable[[Any], BaseAdapter],
                 run: Callable[[Coroutine[Any, Any, Any]], Any], hearing: Hearing,
                 moderation: Moderation, metrics: RedisMetrics, faults: FaultInjector,
                 budget: MonthlyBudget | None = None, feedback_buttons: bool = False) -> None:
        self._model_id = model_id
        self._feedback_buttons = feedback_buttons
        #: The platform message ids of each turn's sent parts, from send to finish (the log
        #: keeps them, so that a reaction on any part finds the answer).
        self._sent_ids: dict[str, tuple[str, ...]] = {}
        self._sent_ids_lock = threading.Lock()  # the worker's threads share one Delivery
        self._budget = budget or MonthlyBudget(store, 0)
        self._history_ttl = history_ttl
        self._keep_audio = keep_audio
        self._store = store
        self._history = history
        self._log = log
        self._adapter = adapters
        self._run = run
        self._hearing = hearing
        self._moderation = moderation
        self._metrics = metrics
        self._faults = faults

    def compose(self, turn: Turn, outcome: GenerationOutcome | None) -> Reply:
        """The reply: the turn's notices, then the answer, or the apology if none came."""
        notices = list(turn.notices)
        answer = ""
        if outcome is not None and outcome.refused is not None:
            notices.append(self._moderation.refusal(turn.language, outcome))
        elif outcome is not None:
            answer = clean_reply(outcome.text)
            if outcome.error:
                log.warning("turn %s: engine error: %s", turn.turn_id, outcome.error)
            apology = text(Text.APOLOGY, turn.language)
            if not answer and apology not in notices:
                notices.append(apology)
            elif answer and turn.grounding.passages:
                answer, used = cited(turn.grounding, answer)
                answer = f"{answer}\n\n{sources_line(used, turn.language)}"
        feedback = turn.turn_id if self._feedback_buttons and answer.strip() \
            and turn.key.platform in FEEDBACK_PLATFORMS else None
        return Reply(key=turn.key, in_reply_to=turn.plan.in_reply_to, language=turn.language,
                     notices=tuple(notices), text=answer, reply_context=turn.plan.reply_context,
                     feedback=feedback)

    def send(self, turn: Turn, reply: Reply, *, fresh: bool) -> None:
        """Send the reply's parts not sent yet; a permanent refusal is logged, not retried."""
        key = turn.key
        parts = DeliveryLog(self._store, turn.turn_id, fresh=fresh,
                            counter=self._budget.counter(key))
        try:
            self._faults.check("send", turn.plan.user_text)
            try:
                self._run(self._adapter(key.platform).send(reply, parts))
            finally:
                with self._sent_ids_lock:
                    self._sent_ids[turn.turn_id] = parts.message_ids
                    while len(self._sent_ids) > 256:  # turns another process finished
                        self._sent_ids.pop(next(iter(self._sent_ids)))
        except PermanentSendError as exc:
            log.error("turn %s: reply refused by %s: %s", turn.turn_id, key.platform, exc)
            self._metrics.inc("send_errors", platform=key.platform.value, code=exc.code)
        else:
            self._metrics.observe("first_reply_seconds",
                                  max(time.time() - turn.plan.received_at, 0),
                                  platform=key.platform.value)
        self._metrics.inc("languages", language=turn.language)

    def send_notice(self, reply: Reply, turn_id: str, what: str) -> None:
        """A reply of the bot's own (the apology, the busy notice), best effort, once."""
        try:
            self._run(self._adapter(reply.key.platform).send(
                reply, DeliveryLog(self._store, f"{turn_id}:{what}",
                                   counter=self._budget.counter(reply.key))))
        except Exception as exc:  # the platform is away too: the turn still ends
            log.error("turn %s: %s not sent: %s", turn_id, what, type(exc).__name__)

    def finish(self, turn: Turn, lease: str, reply: Reply, outcome: GenerationOutcome | None,
               messages: Sequence[InboundMessage] | None = None) -> Finished:
        """The log, then the history, language and release in one script. `messages` are the
        turn's (read from its inflight list when not given)."""
        plan = turn.plan
        self._faults.check("record", plan.user_text)
        answer = reply.text
        if messages is None:
            messages = self._store.turn_messages(plan.key)
        with self._sent_ids_lock:
            answer_parts = self._sent_ids.pop(plan.turn_id, ())
        self._log.record_turn(TurnRecord(
            key=plan.key, messages=tuple(messages),
            user_text="\n".join((plan.user_text, *turn.documents.mentions)).strip(),
            thumbnails=self._thumbnails(turn),
            reply_text=answer or "\n".join(reply.notices), language=plan.language,
            model=self._model_id if outcome is not None else None,
            latency_ms=(time.time() - plan.received_at) * 1000 if plan.received_at else None,
            prompt_tokens=outcome.prompt_tokens if outcome else None,
            completion_tokens=outcome.completion_tokens if outcome else None,
            error=outcome.error if outcome else None, turn_id=plan.turn_id,
            **self._moderation.records(turn, outcome),
            transcript=turn.voice.transcript,
            knowledge=record(turn.grounding) if outcome is not None else None,
            answer_parts=answer_parts, handoff=plan.handoff is Handoff.REQUESTED,
            audio=self._hearing.kept_audio(plan.turn_id, turn.voice) if self._keep_audio
            else ()))
        entries: list[HistoryEntry] = []
        # A held turn's words (a person of the team answers) join the history all the same:
        # the bot has the whole conversation when it takes over again.
        spoke = turn.needs_model or (plan.handoff is not None and bool(plan.user_text.strip()))
        if spoke and not (outcome is not None and outcome.refused is Refusal.INPUT):
            entries.append(HistoryEntry(role="user", text=turn.user_content,
                                        image_ids=turn.image_ids,
                                        language=plan.language,
                                        spoken=turn.voice.transcript is not None))
            if answer:
                entries.append(HistoryEntry(role="assistant", text=answer,
                                            language=plan.language))
        finished = self._store.finish_turn(
            plan.key, lease, history=tuple(e.model_dump_json() for e in entries),
            language=plan.language, language_ttl=self._history_ttl, since=plan.received_at)
        self._hearing.drop(plan.turn_id, turn.voice)  # heard and logged: the audio goes
        return finished

    def operator_reply(self, key: ConversationKey, reply_text: str, *, author: str,
                       reply_id: str, language: str) -> str | None:
        """An answer written by a person of the team (hand-off): sent like the bot's (split
        and formatted by the adapter; no reply context: LINE pushes), once (markers under
        "op-{reply_id}"), logged as an operator turn with the author's name, and kept in the
        history as the assistant's words, so the bot has them when it takes over. Returns the
        platform's refusal (a permanent one), or None when sent; a transient refusal raises
        for the task to retry."""
        turn_id = f"op-{reply_id}"
        reply = Reply(key=key, in_reply_to="", language=language, text=reply_text)
        error = None
        try:
            self._run(self._adapter(key.platform).send(reply, DeliveryLog(self._store, turn_id)))
        except PermanentSendError as exc:
            log.error("operator reply %s refused by %s: %s", turn_id, key.platform, exc)
            self._metrics.inc("send_errors", platform=key.platform.value, code=exc.code)
            error = f"not delivered: {exc}"
        self.record_operator_reply(key, reply_text, author=author, reply_id=reply_id,
                                   language=language, error=error)
        if error is None:
            self._history.append(key, HistoryEntry(role="assistant", text=reply_text,
                                                   language=language),
                                 once=f"{self._store.keys.prefix}:turn:{turn_id}:history")
        return error

    def record_operator_reply(self, key: ConversationKey, reply_text: str, *, author: str,
                              reply_id: str, language: str, error: str | None) -> None:
        """Log an operator's reply (`error`: why it was not delivered; None: it was)."""
        self._log.record_turn(TurnRecord(key=key, reply_text=reply_text, language=language,
                                         model=f"operator: {author}"[:128], error=error,
                                         turn_id=f"op-{reply_id}"))

    def rate(self, message: InboundMessage) -> int | None:
        """Store a person's 👍/👎 (a RATING message) against the answer it was given on, then
        let the platform show it (Telegram: the callback answered, the buttons replaced by the
        choice). Never a turn, never a model call, never a text to the person. Returns the
        rating kept (0: removed), or None for an answer not in the log (ignored silently)."""
        rating = message.rating
        if rating is None:
            return None
        try:
            rated = self._log.rate(message.key, rating.value, rating.source.value,
                                   turn_id=rating.turn_id, platform_message_id=rating.message_id)
        except Exception as exc:  # the log is away: the rating is lost, the person not told
            log.error("rating on %s not stored: %s", message.key.platform, type(exc).__name__)
            rated = None
        self._metrics.inc("ratings", platform=message.key.platform.value,
                          value="unknown" if rated is None else str(rated.value))
        try:
            self._run(self._adapter(message.key.platform).acknowledge_rating(
                message, None if rated is None else rated.value))
        except Exception as exc:  # the rating is stored; the platform's display is cosmetic
            log.warning("rating acknowledgement failed on %s: %s", message.key.platform,
                        type(exc).__name__)
        return None if rated is None else rated.value

    def release(self, key: ConversationKey, lease: str) -> Finished:
        """End a turn that has nothing to write down."""
        return self._store.finish_turn(key, lease)

    def _thumbnails(self, turn: Turn) -> tuple[bytes, ...]:
        ids = turn.photos.thumbnail_ids + turn.documents.thumbnail_ids
        if not ids:  # a turn from before thumbnails were made at download time
            return tuple(make_thumbnail(data) for i in turn.photos.image_ids
                         if (data := self._history.image(turn.key, i)))
        return tuple(data for i in ids if (data := self._history.image(turn.key, i)))
