"""The turn service: a turn's stages in order, and one failure policy.

    start (io)           take the turn, with what it reads in one round trip (its messages, the
                         conversation's language, pin and history: `ConversationStore`),
                         `screening`, then `hearing` (voice notes worth hearing go to the
                         recogniser first: `Transcribe`), then `prepare`
    after_hearing (io)   the same turn once its voice notes were heard: `prepare`
    prepare              `planning` (language, commands), `media` (photos), `reading` (files
                         sent in chat), `knowledge` (the operator's passages), the busy notice
                         (`presence`), and the route: the model (`Generate`), or delivery
    transcribe (gpu)     `hearing.transcribe`, beside the model
    generate (gpu)       `generation.run` for a job that crossed Celery: nothing else
    deliver (io)         `delivery`: compose, send, log, write the history and release
    carry_on             a worker that hosts the models runs the model steps of its own turns
                         itself: no Celery hop, no Redis bookkeeping of a generation in flight

Failure policy, in one place (`_policy`): Redis errors propagate (the lease lapses and the
reconciler resumes the turn); a transient send error propagates for the task to retry with
capped backoff (then `give_up`): from `carry_on` as `SendRefused`, with the turn to deliver
again, since the task that carried the turn is not the delivery task; a permanent send error is logged and the turn ends
(`Delivery.send`); anything else ends the turn with the apology in the person's language. Every
record a turn writes is keyed by its turn id, so a resumed or retried step never repeats what
was done.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import redis

from adapters.base import TransientSendError
from bot.kernel.messages import ConversationKey, InboundMessage, Reply
from bot.kernel.texts import REPLY_INSTRUCTION, Text, text
from storage.conversations import ConversationStore, Started, TurnStatus, turn_id_of
from storage.handoff import Hold
from storage.history import parse_entries
from storage.metrics import RedisMetrics
from workers.leases import LeaseKeeper
from workers.protocol import (
    Deliver,
    Generate,
    GenerationJob,
    GenerationOutcome,
    Grounding,
    Handoff,
    Heard,
    HearingJob,
    Idle,
    Problem,
    Step,
    Transcribe,
    Turn,
    TurnPlan,
    Voice,
    Wait,
)
from workers.turn.delivery import Delivery
from workers.turn.generation import Generation
from workers.turn.hearing import Hearing, fold
from workers.turn.knowledge import Knowledge
from workers.turn.media import Media
from workers.turn.moderation import Moderation
from workers.turn.planning import Planner
from workers.turn.presence import Presence
from workers.turn.reading import Reading
from workers.turn.screening import Screened, Screening

log = logging.getLogger(__name__)


class TurnBusy(Exception):
    """Another worker is delivering this turn; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"turn busy for {retry_after:.1f}s")
        self.retry_after = retry_after


class SendRefused(Exception):
    """The platform refused a send for now in a turn this process carried itself (`carry_on`):
    `step` is the delivery to try again after the backoff (parts already sent are skipped)."""

    def __init__(self, step: Deliver, error: TransientSendError) -> None:
        super().__init__(str(error))
        self.step = step
        self.error = error


@dataclass(frozen=True)
class Known:
    """What a turn reads before it is planned: the conversation's language, /lang pin and
    newest history entries (raw)."""

    language: str | None = None
    pin: str | None = None
    history: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, started: Started) -> Known:
        return cls(started.language, started.pin, started.history)


@dataclass(frozen=True)
class Stages:
    screening: Screening
    planner: Planner
    hearing: Hearing
    media: Media
    moderation: Moderation
    generation: Generation
    delivery: Delivery
    presence: Presence
    knowledge: Knowledge
    reading: Reading


class TurnService:
    def __init__(self, stages: Stages, *, store: ConversationStore, leases: LeaseKeeper,
                 metrics: RedisMetrics, default_language: str, album_window: float,
                 history_turns: int) -> None:
        self.stages = stages
        self.store = store
        self.leases = leases
        self.metrics = metrics
        self._default_language = default_language
        self._album_window = album_window
        self._history_turns = history_turns

    # ================================================================ start (I/O worker)
    def answer(self, key: ConversationKey, *, models_here: bool) -> tuple[Step | None, bool]:
        """Start the conversation's next turn and take it as far as this process can: all
        the way (a turn that needs no model, or `models_here`), or to the step another worker
        takes over. Returns that step (None when the turn ended here) and whether more
        messages wait for a next turn."""
        step, messages = self._start(key)
        if isinstance(step, Deliver) or (models_here and isinstance(step,
                                                                    (Transcribe, Generate))):
            return None, self.carry_on(step, messages)
        return step, False

    def start(self, key: ConversationKey) -> Step:
        """Take the conversation's next turn and prepare it (see the module docstring)."""
        return self._start(key)[0]

    def _start(self, key: ConversationKey) -> tuple[Step, list[InboundMessage]]:
        started = self.store.start_turn(key, album_window=self._album_window,
                                        history=self._history_turns)
        if started.status is TurnStatus.WAIT:
            return Wait(countdown=started.wait), []
        if started.lease is None or started.status not in (TurnStatus.TAKEN,
                                                           TurnStatus.RESUMED):
            # Busy: the holder starts the next turn when it ends; if it died, the reconciler.
            return Idle(), []
        lease, messages = started.lease, list(started.messages)
        return self._prepare_started(started, key, lease, messages), messages

    def _prepare_started(self, started: Started, key: ConversationKey, lease: str,
                         messages: list[InboundMessage]) -> Step:
        resumed = started.status is TurnStatus.RESUMED
        with self._policy(key, lease, messages=messages) as outcome:
            with self.leases.holding(key, lease):
                if resumed:
                    log.info("turn %s resumed", lease,
                             extra={"conversation": key.log_id(), "turn": turn_id_of(lease)})
                    self.metrics.inc("turns_resumed")
                screened = self.stages.screening.screen(messages, resumed=resumed)
                if screened.held is not None:  # none of its text is read, nothing heard
                    return self._route_held(Known.of(started), lease, messages, screened)
                hold = Hold.from_json(started.handoff)
                if hold is not None and hold.turn != turn_id_of(lease):
                    # A person of the team answers: no model, nothing heard (the turn that
                    # asked for them, resumed, is not held: it carries the notice).
                    return self._route_handoff(Known.of(started), lease, messages, hold)
                heard = self.stages.hearing.gather(key, turn_id_of(lease), screened.allowed)
                if any(h.pending for h in heard):
                    return Transcribe(job=HearingJob(turn_id=turn_id_of(lease), lease=lease,
                                                     key=key, heard=tuple(heard)))
                return self.prepare(Known.of(started), lease, messages, screened, heard,
                                    resumed=resumed)
        return outcome.step

    def after_hearing(self, job: HearingJob, heard: Sequence[Heard], *,
                      held: bool = False) -> Step:
        """Go on with a turn whose voice notes were heard (`held`: this process holds the
        turn's lease already)."""
        key, lease = job.key, job.lease
        if not held and not self.store.claim(key, lease):
            return Idle()  # the turn ended, or was resumed (and will be heard again)
        messages = self.store.turn_messages(key)
        with self._policy(key, lease, messages=messages) as outcome:
            with self.leases.holding(key, lease):
                if not messages:
                    self.stages.delivery.release(key, lease)
                    return Idle()
                screened = self.stages.screening.screen(messages, resumed=True)
                language, pin, history = self.store.known(key, history=self._history_turns)
                return self.prepare(Known(language, pin, history), lease, messages, screened,
                                    heard)
        return outcome.step

    def prepare(self, known: Known, lease: str, messages: list[InboundMessage],
                screened: Screened, heard: Sequence[Heard] = (), *,
                resumed: bool = False) -> Step:
        """Plan the turn (its voice notes read as their transcripts), act on its commands,
        fetch its photos and files, and route it."""
        st = self.stages
        turn_id = turn_id_of(lease)
        allowed = list(screened.allowed)
        plan = st.planner.plan(turn_id, fold(allowed, heard) if heard else allowed,
                               language=known.language, pin=known.pin)
        voice, voice_notices = st.hearing.result(heard, plan.language) if heard \
            else (Voice(), ())
        st.planner.apply_commands(plan)
        notices = (*plan.notices, *voice_notices, *screened.notices(plan.language))
        turn = Turn(plan=plan, notices=notices, voice=voice)
        if plan.needs_model:
            st.presence.typing(turn)
        photos, photo_notices = st.media.fetch(plan)
        documents, document_notices = st.reading.read(plan)
        grounding = st.knowledge.find(plan) if plan.needs_model else Grounding()
        turn = turn.model_copy(update={
            "photos": photos, "documents": documents, "grounding": grounding,
            "notices": (*turn.notices, *photo_notices, *document_notices)})
        if grounding.declined and not turn.brought:  # strict, nothing found: say so
            turn = turn.model_copy(update={"notices": (
                *turn.notices, text(Text.KNOWLEDGE_NOT_FOUND, plan.language))})
        if resumed and (kept := self.store.outcome(turn_id)) is not None:
            return Deliver(turn=turn, lease=lease,
                           outcome=GenerationOutcome.model_validate_json(kept))
        st.presence.busy_notice(turn, lambda reply: st.delivery.send_notice(reply, turn_id,
                                                                            "busy"))
        return self.route(turn, lease, known.history)

    def route(self, turn: Turn, lease: str, history: Sequence[bytes] = ()) -> Step:
        """The model's job, or delivery at once (a turn of commands and notices)."""
        st = self.stages
        if not turn.needs_model:
            return Deliver(turn=turn, lease=lease)
        turn = turn.model_copy(update={"stream": st.presence.streams(turn)})
        entries = parse_entries(history, st.generation.history_budget(turn))
        st.presence.waiting(turn)
        return Generate(turn=turn, lease=lease, job=st.generation.job(turn, lease, entries))

    def _route_held(self, known: Known, lease: str, messages: list[InboundMessage],
                    screened: Screened) -> Step:
        """A turn held back whole: its notice (at most once a window), and the log's mark."""
        plan = self.stages.planner.plan_held(turn_id_of(lease), messages,
                                             language=known.language, pin=known.pin)
        plan = plan.model_copy(update={"held": screened.held})
        return Deliver(turn=Turn(plan=plan, notices=screened.notices(plan.language)),
                       lease=lease)

    def _route_handoff(self, known: Known, lease: str, messages: list[InboundMessage],
                       hold: Hold) -> Step:
        """A turn of a held conversation: its words go to the log and the history, the bot
        says nothing (but the notice, if the person was not told yet: an admin took over)."""
        plan = self.stages.planner.plan_held(turn_id_of(lease), messages,
                                             language=known.language, pin=known.pin)
        plan = plan.model_copy(update={
            "handoff": Handoff.HELD,
            "user_text": "\n".join(m.text for m in messages if m.text)})
        notices: tuple[str, ...] = ()
        if not hold.notified and self.stages.planner.claim_handoff_notice(plan.key):
            notices = (text(Text.HANDOFF_STARTED, plan.language),)
        self.metrics.inc("turns_held_for_person")
        return Deliver(turn=Turn(plan=plan, notices=notices), lease=lease)

    # ================================================================ the model's steps
    def carry_on(self, step: Step, messages: Sequence[InboundMessage] | None = None) -> bool:
        """Run a turn's model steps in this process, which hosts the models, then deliver it;
        returns whether more messages wait. No Celery hop, no generation bookkeeping in Redis:
        this process holds the turn's lease throughout."""
        while isinstance(step, Transcribe):
            job = step.job
            with self.leases.holding(job.key, job.lease):
                heard = self.stages.hearing.transcribe(job)
            step = self.after_hearing(job, heard, held=True)
        if isinstance(step, Generate):
            turn, lease, request = step.turn, step.lease, step.job
            with self._policy(turn.key, lease, turn=turn) as failed:
                with self.leases.holding(turn.key, lease):
                    outcome = self.stages.presence.while_generating(
                        turn, lambda publish: self.stages.generation.run(
                            request, publish if turn.stream else None))
                    self.stages.presence.answered(turn.turn_id)
                    kept = self.store.keep_outcome(turn.turn_id, outcome.model_dump_json())
                step = Deliver(turn=turn, lease=lease,
                               outcome=GenerationOutcome.model_validate_json(kept))
            if failed.ended:
                return failed.more
        if isinstance(step, Deliver):
            try:
                return self.deliver(step.turn, step.lease, step.outcome, held=True,
                                    messages=messages)
            except TransientSendError as exc:
                raise SendRefused(step, exc) from exc
        return False

    def transcribe(self, job: HearingJob) -> tuple[Heard, ...]:
        """Hear a job's voice notes that crossed Celery (inference worker)."""
        if not self.store.in_flight(job.key, job.lease):
            return job.heard  # a stale message: the continuation drops out too
        with self.leases.holding(job.key, job.lease):
            try:
                return self.stages.hearing.transcribe(job)
            except redis.RedisError:
                raise
            except Exception:  # never a lost turn: the person gets the apology
                log.exception("turn %s: transcription failed", job.turn_id)
                return tuple(h.model_copy(update={"problem": Problem.FAILED}) if h.pending
                             else h for h in job.heard)

    def generate(self, job: GenerationJob) -> GenerationOutcome:
        """Run a job that crossed Celery (inference worker); the outcome is kept by turn id
        (the first one wins)."""
        state, kept = self.store.begin_generation(job.key, job.lease)
        if state == "kept" and kept is not None:
            return GenerationOutcome.model_validate_json(kept)
        if state != "go":
            return GenerationOutcome(skipped=True)  # stale, or another worker generates it
        generating = self.store.generation_key(job.lease)
        try:
            with self.leases.holding(job.key, job.lease, also=(generating,)):
                outcome = self.stages.generation.run(
                    job, _throttled(lambda draft: self.store.set_partial(job.turn_id, draft))
                    if job.stream else None)
                self.stages.presence.answered(job.turn_id)
            # The outcome is kept before the generation lock goes: an owner never sees a
            # generation that began, ended, and left nothing.
            kept = self.store.keep_outcome(job.turn_id, outcome.model_dump_json())
        finally:
            self.store.unlock(generating)
        return GenerationOutcome.model_validate_json(kept)

    # ================================================================ deliver (I/O worker)
    def deliver(self, turn: Turn, lease: str, outcome: GenerationOutcome | None, *,
                attempt: int = 0, held: bool = False,
                messages: Sequence[InboundMessage] | None = None) -> bool:
        """Compose, send, record, release; True when more messages wait (the next turn).

        Raises `TransientSendError` for the task to retry (parts already sent are skipped).
        `held`: this process holds the turn's lease throughout (no claim, no delivery lock)."""
        if outcome is not None and outcome.skipped:
            return False
        sending: str | None = None
        if held and self.leases.failed_over_since(lease) and not self.store.claim(turn.key,
                                                                                   lease):
            return False  # Redis failed over and lost the turn's start: resumed elsewhere
        if not held:
            if not self.store.claim(turn.key, lease):
                return False  # the turn ended, or was resumed by another worker
            sending = self.store.lock_delivery(turn.turn_id)
            if sending is None:  # a second delivery while the first one sends
                raise TurnBusy(self.store.delivery_lock_ttl(turn.turn_id))
        fresh = attempt == 0 and lease.endswith(".0") and held
        try:
            with self._policy(turn.key, lease, turn=turn, sending=True) as failed:
                with self.leases.holding(turn.key, lease,
                                         also=(sending,) if sending else ()):
                    st = self.stages
                    reply = st.delivery.compose(turn, outcome)
                    st.delivery.send(turn, reply, fresh=fresh)
                    return st.delivery.finish(turn, lease, reply, outcome, messages).more
            return failed.more
        finally:
            if sending is not None:
                self.store.unlock(sending)

    # ================================================================ presence (other workers)
    def keep_typing(self, turn: Turn, lease: str, started: float) -> bool:
        return self.stages.presence.keep_typing(turn, lease, started)

    def refresh_interval(self, turn: Turn) -> float:
        return self.stages.presence.refresh_interval(turn)

    # ================================================================ failures
    @contextlib.contextmanager
    def _policy(self, key: ConversationKey, lease: str, *, turn: Turn | None = None,
                messages: Sequence[InboundMessage] = (),
                sending: bool = False) -> Iterator[_Failed]:
        """The one failure policy of every stage (the module docstring); when it ends the
        turn, the context's `_Failed` says so (and its step is Idle)."""
        failed = _Failed()
        try:
            yield failed
        except (redis.RedisError, TurnBusy):
            raise  # Redis away: the lease lapses and the reconciler resumes the turn
        except TransientSendError:
            if sending:
                raise  # the task retries with backoff, then gives up
            failed.more = self.give_up(key, lease, RuntimeError("platform unavailable"),
                                       turn=turn, messages=messages)
            failed.ended = True
        except Exception as exc:
            log.exception("turn %s: failed", lease)
            failed.more = self.give_up(key, lease, exc, turn=turn, messages=messages)
            failed.ended = True

    def give_up(self, key: ConversationKey, lease: str, reason: BaseException, *,
                turn: Turn | None = None, messages: Sequence[InboundMessage] = ()) -> bool:
        """End a turn that cannot be answered: the apology (best effort, unless part of an
        answer went out), the log, the release. Returns True when more messages wait."""
        log.error("turn %s: giving up: %s", lease, type(reason).__name__)
        self.metrics.inc("turns_failed", step=type(reason).__name__)
        if not self.store.claim(key, lease):
            return False
        st = self.stages
        with self.leases.holding(key, lease):
            if turn is None:
                messages = list(messages) or self.store.turn_messages(key)
                turn = self._fallback_turn(key, lease, messages)
                logged = False
            else:
                logged = True
            reply = Reply(key=key, in_reply_to=turn.plan.in_reply_to, language=turn.language,
                          notices=(text(Text.APOLOGY, turn.language),),
                          reply_context=turn.plan.reply_context)
            if not self.store.sent_parts(turn.turn_id, 1):  # no answer went out yet
                st.delivery.send_notice(reply, turn.turn_id, "apology")
            if logged:
                try:
                    return st.delivery.finish(turn, lease, reply, GenerationOutcome(
                        error=f"{type(reason).__name__}: {reason}"), messages or None).more
                except redis.RedisError:
                    raise
                except Exception:
                    log.exception("turn %s: record failed after giving up", turn.turn_id)
            return st.delivery.release(key, lease).more

    def _fallback_turn(self, key: ConversationKey, lease: str,
                       messages: Sequence[InboundMessage]) -> Turn:
        """A turn that failed before it had a plan: addressed, in the best language known."""
        last = messages[-1] if messages else None
        language = (self.store.pinned_language(key) or self.store.language(key)
                    or next((m.language_hint for m in reversed(messages) if m.language_hint),
                            None) or self._default_language)
        if language not in REPLY_INSTRUCTION:
            language = self._default_language
        return Turn(plan=TurnPlan(
            turn_id=turn_id_of(lease), key=key, language=language,
            in_reply_to=last.message_id if last else "",
            reply_context=last.reply_context if last else None,
            received_at=min((m.received_at for m in messages), default=time.time())))


@dataclass
class _Failed:
    """Whether `_policy` ended the turn, and whether more messages wait after it."""

    ended: bool = False
    more: bool = False

    @property
    def step(self) -> Step:
        return Idle()


def _throttled(write: Callable[[str], None], every: float = 0.5) -> Callable[[str], None]:
    """A draft writer that writes at most every `every` seconds."""
    last = [0.0]

    def publish(draft: str) -> None:
        now = time.monotonic()
        if draft and now - last[0] >= every:
            last[0] = now
            write(draft)

    return publish
