"""The turn service: the steps of one turn, called by the thin Celery tasks in `workers.tasks`.

    start (io)     take the turn's lease, check its voice notes (sent to `transcribe` first),
                   plan it (language, commands), fetch its photos, build the generation job;
                   or resume a turn whose worker died where it stopped
    transcribe (gpu)  hear the turn's voice notes (the recogniser beside the chat model)
    after_hearing (io)  plan the turn with the transcripts as the person's words, and go on
    generate (gpu) run the engine on the job; nothing else (no turn ownership, no platform I/O)
    deliver (io)   compose the reply, send it, write the log and history, release the turn

`TurnService` gets every service it needs injected (turn store, history, log, metrics, the
adapters, the engine, the lease keeper), so a test builds it with a recording adapter and a
scripted engine. Each step of a turn is a named method; new steps go where the docstrings of
`start` and `deliver` say.

Failure rules: Redis errors propagate (the lease lapses and the reconciler resumes the turn);
a transient send error propagates for the task to retry with capped backoff; a permanent send
error is logged and the turn ends; anything else ends the turn with the apology in the user's
language (`abort`, `give_up`). Every record a turn writes is keyed by its turn id, so a resumed
or redelivered step never repeats what was done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import redis

from adapters.base import BaseAdapter, MediaError, MediaTooLarge, PermanentSendError
from bot.conversation import TurnPlan, clean_reply, plan_turn, system_prompt
from bot.language import clean, is_other_language
from bot.logs import pseudonym
from bot.messages import Attachment, ConversationKey, InboundMessage, Platform, Reply
from bot.settings import Settings
from bot.texts import REPLY_INSTRUCTION, Text, text
from storage.abuse import Backlog
from storage.conversations import ConversationStore, turn_id_of
from storage.history import HistoryEntry, RedisHistory
from storage.log import ConversationLog, GuardRecord, TurnRecord
from storage.metrics import RedisMetrics
from storage.voice import VoiceNotes
from workers.asr.base import BaseRecogniser, RecogniserError, RecogniserUnavailable
from workers.engines.base import ChatTurn, GenerationRequest, GenerationResult
from workers.faults import FaultInjector
from workers.images import ImageUnreadable, make_thumbnail, prepare_image
from workers.jobs import (
    Deliver,
    Generate,
    GenerationJob,
    GenerationOutcome,
    GuardCheck,
    Idle,
    JobTurn,
    Step,
    Transcribe,
    Wait,
)
from workers.leases import LeaseKeeper
from workers.moderation import (
    AbuseScreen,
    DraftChecker,
    GuardDecision,
    Moderator,
    Screened,
)
from workers.voice import Heard, HearingJob, Problem, fold, gather
from workers.voice import notices as voice_notices
from workers.voice import transcribe as transcribe_clips
from workers.voice import transcript as transcript_of

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Only the newest images of a conversation go to the model as pixels; older ones as a mention.
MAX_HISTORY_IMAGES = 3
#: Answers shorter than this (in letters) are not checked for their language.
MIN_CHECKED_LETTERS = 20
#: A /lang choice outlives the history: people expect it to stick.
PIN_TTL_SECONDS = 365 * 24 * 3600


class TurnBusy(Exception):
    """Another worker is delivering this turn; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"turn busy for {retry_after:.1f}s")
        self.retry_after = retry_after


class Engine(Protocol):
    def generate(self, request: GenerationRequest) -> GenerationResult: ...


class TurnService:
    def __init__(self, settings: Settings, *, store: ConversationStore, history: RedisHistory,
                 conversation_log: ConversationLog, metrics: RedisMetrics,
                 adapters: Callable[[Platform], BaseAdapter], engine: Callable[[], Engine],
                 run: Callable[[Coroutine[Any, Any, Any]], Any],
                 leases: LeaseKeeper | None = None, faults: FaultInjector | None = None,
                 recogniser: Callable[[], BaseRecogniser] | None = None,
                 voice: VoiceNotes | None = None,
                 moderator: Moderator | None = None, abuse: AbuseScreen | None = None,
                 backlog: Backlog | None = None) -> None:
        self.settings = settings
        self.store = store
        self.history = history
        self.conversation_log = conversation_log
        self.metrics = metrics
        self.adapter = adapters
        self.engine = engine
        self.run = run
        self.leases = leases or LeaseKeeper(store, max_hold_seconds=settings.turn_timeout_seconds)
        self.faults = faults or FaultInjector(None)
        self.moderator = moderator
        self.abuse = abuse
        self.backlog = backlog
        #: The speech recogniser (loaded on first use) and where voice notes wait meanwhile;
        #: without them a voice note gets the apology.
        self.recogniser = recogniser
        self.voice = voice

    # ================================================================ start (I/O worker)
    def start(self, key: ConversationKey) -> Step:
        """Take the conversation's next turn and prepare it.

        The steps, in order: `album_wait`, take the lease, `gather_voice` (voice notes worth
        hearing go to the recogniser first: `Transcribe`, and `after_hearing` goes on), then
        `prepare`: `plan`, `hear`, `apply_commands`, `fetch_images`, and `route` (the job for
        the GPU, or delivery at once). A step that
        checks or transforms the person's input before generation (moderation, transcription)
        goes between `fetch_images` and `route`; it may end the turn by returning
        `self.route(plan with notices and no user text, lease)`.
        """
        wait = self.album_wait(key)
        if wait > 0:
            return Wait(countdown=wait)
        state = self.store.take_turn(key)
        if state.lease is None or state.status not in ("taken", "resumed"):
            # Busy: the holder starts the next turn when it ends; if it died, the reconciler.
            return Idle()
        lease = state.lease
        try:
            with self.leases.holding(key, lease):
                if state.status == "resumed":
                    resumed = self.resume(key, lease)
                    if resumed is not None:
                        return resumed
                messages = self.store.turn_messages(key)
                if not messages:
                    self.store.finish_turn(key, lease)
                    return Idle()
                screened = self.screen(messages)
                if not screened.allowed:  # every message held back: nothing to hear
                    return self.prepare(key, lease, messages)
                heard = self.gather_voice(key, lease, screened.allowed)
                if any(h.pending for h in heard):
                    return Transcribe(job=HearingJob(turn_id=turn_id_of(lease), lease=lease,
                                                     key=key, heard=tuple(heard)))
                return self.prepare(key, lease, messages, heard)
        except redis.RedisError:
            raise  # Redis away: the lease lapses and the reconciler resumes the turn
        except Exception as exc:
            log.exception("turn %s: preparing failed", lease)
            self.abort(key, lease, exc)
            return Idle()

    def after_hearing(self, job: HearingJob, heard: Sequence[Heard]) -> Step:
        """Go on with a turn whose voice notes the recogniser heard (I/O worker)."""
        key, lease = job.key, job.lease
        if not self.store.claim(key, lease):
            return Idle()  # the turn ended, or was resumed (and will be heard again)
        try:
            with self.leases.holding(key, lease):
                messages = self.store.turn_messages(key)
                if not messages:
                    self.store.finish_turn(key, lease)
                    return Idle()
                return self.prepare(key, lease, messages, heard)
        except redis.RedisError:
            raise
        except Exception as exc:
            log.exception("turn %s: preparing after hearing failed", lease)
            self.abort(key, lease, exc)
            return Idle()

    def prepare(self, key: ConversationKey, lease: str, messages: list[InboundMessage],
                heard: Sequence[Heard] = ()) -> Step:
        """Plan the turn (its voice notes read as their transcripts), act on its commands,
        fetch its photos, and route it."""
        screened = self.screen(messages)
        if not screened.allowed:
            return self.route(self.hold(self.plan(key, lease, messages), screened), lease)
        messages = screened.allowed
        plan = self.plan(key, lease, fold(messages, heard) if heard else messages)
        if heard:
            plan = self.hear(plan, heard)
        plan = self.hold(plan, screened)
        self.apply_commands(plan)
        plan = self.fetch_images(plan)
        self.busy_notice(plan)
        return self.route(plan, lease)

    def album_wait(self, key: ConversationKey) -> float:
        """Seconds to wait for the rest of an album (photos arrive as separate updates)."""
        pending = self.store.pending(key)
        if pending and pending[-1].album_id:
            return pending[-1].received_at + self.settings.album_window_seconds - time.time()
        return 0.0

    def resume(self, key: ConversationKey, lease: str) -> Step | None:
        """Pick a turn whose worker died up where it stopped; None: plan it again."""
        turn_id = turn_id_of(lease)
        stored = self.store.plan(turn_id)
        log.info("turn %s resumed (%s)", lease, "planned" if stored else "not planned yet",
                 extra={"conversation": key.log_id(), "turn": turn_id})
        self.metrics.inc("turns_resumed")
        if stored is None:
            return None
        plan = TurnPlan.model_validate_json(stored)
        outcome = self.store.outcome(turn_id)
        if outcome is not None:
            return Deliver(plan=plan, lease=lease,
                           outcome=GenerationOutcome.model_validate_json(outcome))
        return self.route(plan, lease, save=False)

    def gather_voice(self, key: ConversationKey, lease: str,
                     messages: list[InboundMessage]) -> list[Heard]:
        """Download and check the turn's voice notes; keep those worth hearing in Redis."""
        heard: list[Heard] = []
        if not any(a.kind == "audio" for m in messages for a in m.attachments):
            return heard
        adapter = self.adapter(key.platform)
        try:  # the person sees the bot at work while it listens
            self.run(adapter.indicate_typing(key, messages[-1].reply_context))
        except Exception as exc:
            log.info("typing indicator failed: %s", type(exc).__name__)
        turn_id = turn_id_of(lease)

        def fetch(attachment: Attachment) -> bytes:
            self.faults.check("fetch")
            return self.run(adapter.fetch_media(attachment.ref, attachment.size))

        def save(slot: int, data: bytes) -> None:
            if self.voice is None:
                raise RecogniserUnavailable("no place to keep voice notes")
            self.voice.save(turn_id, slot, data)

        try:
            heard = gather(messages, fetch, save, self.settings.asr_max_seconds)
        except RecogniserUnavailable:
            heard = [Heard(message=i, problem=Problem.FAILED)
                     for i, m in enumerate(messages) for a in m.attachments
                     if a.kind == "audio"]
        log.info("turn %s: %d voice note(s), %d to hear", turn_id, len(heard),
                 sum(h.pending for h in heard),
                 extra={"conversation": key.log_id(), "turn": turn_id})
        return heard

    def hear(self, plan: TurnPlan, heard: Sequence[Heard]) -> TurnPlan:
        """What the voice notes add to the plan: the transcript, where they wait, and a note
        in the reply language for each that could not be heard."""
        notes = voice_notices(heard, plan.language, self.settings.asr_max_seconds)
        for item in heard:
            self.metrics.inc("voice_notes", outcome=item.problem.value if item.problem else "heard")
        return plan.model_copy(update={
            "notices": (*plan.notices, *notes), "transcript": transcript_of(heard),
            "voice_notes": tuple((h.slot, h.mime_type) for h in heard if h.slot is not None)})

    def plan(self, key: ConversationKey, lease: str,
             messages: list[InboundMessage]) -> TurnPlan:
        """What the turn does: its language, commands, notices, the person's text and photos."""
        self.faults.check("prepare", " ".join(m.text for m in messages))
        s = self.settings
        current = self.store.language(key)
        if current is None and not any(m.language_hint for m in messages):
            # First contact on a platform whose messages carry no language (LINE): ask it.
            try:
                hint = self.run(self.adapter(key.platform).language_hint(key))
            except Exception as exc:
                log.info("language hint unavailable: %s", exc)
                hint = None
            if hint:
                messages = [m.model_copy(update={"language_hint": hint}) for m in messages]
        plan = plan_turn(turn_id_of(lease), messages, current_language=current,
                         default_language=s.default_language,
                         pinned=self.store.pinned_language(key))
        log.info("turn %s: %d message(s), language %s", plan.turn_id, len(messages),
                 plan.language, extra={"conversation": key.log_id(), "turn": plan.turn_id,
                                       "message_ids": [pseudonym(m) for m in plan.message_ids]})
        return plan

    def apply_commands(self, plan: TurnPlan) -> None:
        """/reset forgets the history; /lang pins or releases the reply language."""
        if plan.reset:
            self.history.clear(plan.key)
        if plan.pin is not None:
            self.store.pin_language(plan.key, None if plan.pin == "auto" else plan.pin,
                                    PIN_TTL_SECONDS)

    def fetch_images(self, plan: TurnPlan) -> TurnPlan:
        """Download, decode and store the turn's photos; an unreadable one leaves a notice."""
        if plan.needs_model:
            self.typing(plan)
        notices = list(plan.notices)
        image_ids: list[str] = []
        thumbnail_ids: list[str] = []
        for attachment in plan.attachments:
            try:
                self.faults.check("fetch", plan.user_text)
                data = self.run(self.adapter(plan.key.platform).fetch_media(attachment.ref,
                                                                            attachment.size))
                model_jpeg, thumbnail = self.decode_image(data)
            except MediaTooLarge as exc:
                notices.append(text(Text.FILE_TOO_LARGE, plan.language,
                                    limit_mb=exc.limit_bytes // (1024 * 1024)))
                continue
            except redis.RedisError:
                raise
            except (MediaError, ImageUnreadable) as exc:
                # Refused by the fetch policy, not downloadable, or not decodable: say so.
                log.warning("turn %s: attachment unreadable: %s", plan.turn_id,
                            type(exc).__name__)
                notices.append(text(Text.IMAGE_UNREADABLE, plan.language))
                continue
            except Exception as exc:  # anything unexpected
                log.warning("turn %s: attachment failed: %s", plan.turn_id,
                            type(exc).__name__)
                notices.append(text(Text.APOLOGY, plan.language))
                continue
            image_ids.append(self.history.save_image(plan.key, model_jpeg,
                                                     since=plan.received_at))
            if thumbnail:
                thumbnail_ids.append(self.history.save_image(plan.key, thumbnail,
                                                             since=plan.received_at))
        return plan.model_copy(update={
            "notices": tuple(notices), "image_ids": tuple(image_ids),
            "thumbnail_ids": tuple(thumbnail_ids), "attachments": ()})

    def decode_image(self, data: bytes) -> tuple[bytes, bytes]:
        """The model's JPEG and the log's thumbnail of one downloaded photo."""
        prepared = prepare_image(data, self.settings.max_image_pixels)  # decoded once
        return prepared.model_jpeg, prepared.thumbnail

    def route(self, plan: TurnPlan, lease: str, *, save: bool = True) -> Step:
        """Record the plan (a resumed turn starts from it), then generate or deliver."""
        if plan.user_text.strip() or plan.image_ids:
            adapter = self.adapter(plan.key.platform)
            plan = plan.model_copy(update={"stream": adapter.streams(plan.reply_context)})
            if save:
                self.store.save_plan(plan.turn_id, plan.model_dump_json())
            if self.backlog is not None:
                self.backlog.add(plan.turn_id)
            return Generate(plan=plan, lease=lease, job=self.job(plan, lease))
        if save:
            self.store.save_plan(plan.turn_id, plan.model_dump_json())
        return Deliver(plan=plan, lease=lease)

    def job(self, plan: TurnPlan, lease: str) -> GenerationJob:
        """The model request: image ids, not bytes; the GPU worker reads them from Redis."""
        s = self.settings
        budget = max(s.history_max_tokens - len(plan.user_text) // 4, 0)
        entries = [] if plan.reset else self.history.load(plan.key, max_tokens=budget)
        turns = [JobTurn(role=e.role, text=e.text, image_ids=e.image_ids) for e in entries]
        turns.append(JobTurn(role="user", text=plan.user_text, image_ids=plan.image_ids))
        # Keep pixels for the newest images only; older ones become a short mention.
        seen = 0
        for index in reversed(range(len(turns))):
            turn = turns[index]
            kept: list[str] = []
            mention = turn.text
            for image_id in reversed(turn.image_ids):
                if seen < MAX_HISTORY_IMAGES:
                    kept.append(image_id)
                    seen += 1
                else:
                    mention = f"[photo] {mention}".strip()
            turns[index] = turn.model_copy(update={"text": mention,
                                                   "image_ids": tuple(reversed(kept))})
        return GenerationJob(
            turn_id=plan.turn_id, lease=lease, key=plan.key,
            system=system_prompt(s.system_prompt, plan.language),
            turns=tuple(turns),
            max_new_tokens=s.max_new_tokens, language=plan.language, stream=plan.stream)

    def typing(self, plan: TurnPlan) -> None:
        try:
            self.run(self.adapter(plan.key.platform).indicate_typing(plan.key,
                                                                     plan.reply_context))
        except Exception as exc:  # typing is a courtesy: never fail a turn for it
            log.info("typing indicator failed: %s", type(exc).__name__)

    # ================================================================ transcribe (GPU worker)
    def transcribe(self, job: HearingJob) -> tuple[Heard, ...]:
        """Hear the turn's voice notes with the process's recogniser (batched with other
        turns'); a recogniser that cannot serve leaves them failed, never the turn stuck."""
        if not self.store.in_flight(job.key, job.lease):
            return job.heard  # a stale redelivery: the continuation drops out too
        started = time.perf_counter()
        with self.leases.holding(job.key, job.lease):
            try:
                if self.recogniser is None or self.voice is None:
                    raise RecogniserUnavailable("speech recognition is not set up here")
                voice = self.voice
                heard = transcribe_clips(job.heard, lambda slot: voice.load(job.turn_id, slot),
                                         self.recogniser(), self.settings.asr_max_seconds)
            except RecogniserError as exc:
                log.error("turn %s: speech recognition unavailable: %s", job.turn_id, exc)
                heard = [h.model_copy(update={"problem": Problem.FAILED}) if h.pending else h
                         for h in job.heard]
            except redis.RedisError:
                raise
            except Exception:  # never a lost turn: the person gets the apology
                log.exception("turn %s: transcription failed", job.turn_id)
                heard = [h.model_copy(update={"problem": Problem.FAILED}) if h.pending else h
                         for h in job.heard]
        seconds = time.perf_counter() - started
        audio = sum(h.seconds for h in job.heard if h.pending)
        log.info("turn %s: %.1f s of speech heard in %.2f s", job.turn_id, audio, seconds,
                 extra={"conversation": job.key.log_id(), "turn": job.turn_id})
        self.metrics.observe("transcription_seconds", seconds)
        return tuple(heard)

    # ================================================================ generate (GPU worker)
    def generate(self, job: GenerationJob) -> GenerationOutcome:
        """Run the engine on the job; the outcome is kept by turn id (the first one wins)."""
        if not self.store.in_flight(job.key, job.lease):
            return GenerationOutcome(skipped=True)
        kept = self.store.outcome(job.turn_id)
        if kept is not None:
            return GenerationOutcome.model_validate_json(kept)
        if not self.store.begin_generation(job.lease):
            return GenerationOutcome(skipped=True)  # a redelivered job: another one runs
        generating = self.store.generation_key(job.lease)
        try:
            with self.leases.holding(job.key, job.lease, also=(generating,)):
                outcome = self._generate(job)
                if self.backlog is not None:
                    self.backlog.done(job.turn_id)
            # The outcome is kept before the generation lock goes: an owner never sees a
            # generation that began, ended, and left nothing.
            kept = self.store.save_outcome(job.turn_id, outcome.model_dump_json())
        finally:
            self.store.unlock(generating)
        return GenerationOutcome.model_validate_json(kept)

    def _generate(self, job: GenerationJob) -> GenerationOutcome:
        decisions: list[GuardDecision] = []
        drafts: DraftChecker | None = None
        try:
            self.faults.check("generate", job.turns[-1].text if job.turns else "")
            turns = tuple(
                ChatTurn(role=t.role, text=t.text,
                         images=tuple(img for i in t.image_ids
                                      if (img := self.history.image(job.key, i)) is not None))
                for t in job.turns)
            refused = self.check_input(job, turns[-1], decisions)
            if refused is not None:
                return refused
            drafts = self._draft_checker(job) if job.stream else None
            checked = drafts
            request = GenerationRequest(
                system=job.system, turns=turns, max_new_tokens=job.max_new_tokens,
                on_partial=((lambda answer: checked.offer(clean_reply(answer)))
                            if checked is not None else self._partial_writer(job.turn_id))
                if job.stream else None)
            result = self.engine().generate(request)
            target = job.language
            if (target and not result.error and self.settings.reply_language_check
                    and _wrong_language(result.text, target)):
                # Once more, with the instruction repeated in the user's own turn.
                log.info("turn %s: answer not in %s; generating again", job.turn_id, target)
                self.metrics.inc("regenerations")
                result = self.engine().generate(_firmer(request, target))
        except redis.RedisError:
            raise
        except Exception as exc:  # an answer must come back, even if it is an error
            log.exception("turn %s: generation failed", job.turn_id)
            if drafts is not None:
                drafts.close()
            return GenerationOutcome(error=f"{type(exc).__name__}: {exc}")
        log.info("turn %s: generated %d tokens in %.2fs", job.turn_id, result.completion_tokens,
                 result.seconds, extra={"conversation": job.key.log_id(), "turn": job.turn_id})
        if result.completion_tokens and result.seconds > 0:
            self.metrics.inc("generated_tokens", result.completion_tokens)
            self.metrics.observe("generation_seconds", result.seconds)
            self.metrics.observe("batch_size", result.batch_size)
            self.metrics.observe("generation_tokens_per_second",
                                 result.completion_tokens / result.seconds)
        return self.check_output(job, GenerationOutcome(
            text=result.text, error=result.error, prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens, seconds=result.seconds),
            decisions, drafts)

    def _partial_writer(self, turn_id: str, every: float = 0.5) -> Callable[[str], None]:
        """A callback keeping the answer so far in Redis, at most every `every` seconds."""
        last = [0.0]

        def write(answer: str) -> None:
            now = time.monotonic()
            if answer and now - last[0] >= every:
                last[0] = now
                self.store.set_partial(turn_id, clean_reply(answer))

        return write

    # ================================================================ deliver (I/O worker)
    def deliver(self, plan: TurnPlan, lease: str, outcome: GenerationOutcome | None) -> bool:
        """Compose, send, record, release. Returns True when more messages are waiting.

        Raises `TransientSendError` for the task to retry (parts already sent are skipped).
        A step that checks the answer before it is sent (moderation) goes between `compose`
        and `send`, replacing the reply's text with a refusal notice when it must.
        """
        if outcome is not None and outcome.skipped:
            return False
        if not self.store.claim(plan.key, lease):
            return False  # the turn ended, or was resumed by another worker
        sending = self.store.lock_delivery(plan.turn_id)
        if sending is None:  # a redelivered task while the first one sends
            raise TurnBusy(self.store.delivery_lock_ttl(plan.turn_id))
        try:
            with self.leases.holding(plan.key, lease, also=(sending,)):
                reply = self.compose(plan, outcome)
                self.send(plan, reply)
                self.record(plan, reply, outcome)
                return self.release(plan, lease)
        finally:
            self.store.unlock(sending)

    def compose(self, plan: TurnPlan, outcome: GenerationOutcome | None) -> Reply:
        """The reply: the turn's notices, then the answer, or the apology if none came."""
        notices = list(plan.notices)
        answer = ""
        if outcome is not None and outcome.refused:
            notices.append(self.refusal(plan, outcome))
        elif outcome is not None:
            answer = clean_reply(outcome.text)
            if outcome.error:
                log.warning("turn %s: engine error: %s", plan.turn_id, outcome.error)
            apology = text(Text.APOLOGY, plan.language)
            if not answer and apology not in notices:
                notices.append(apology)
        return Reply(key=plan.key, in_reply_to=plan.in_reply_to, language=plan.language,
                     notices=tuple(notices), text=answer, reply_context=plan.reply_context)

    def send(self, plan: TurnPlan, reply: Reply) -> None:
        """Send the reply's parts not sent yet; a permanent refusal is logged, not retried."""
        key = plan.key
        try:
            self.faults.check("send", plan.user_text)
            self.run(self.adapter(key.platform).send(reply, _TurnDeliveryLog(self.store,
                                                                             plan.turn_id)))
        except PermanentSendError as exc:
            log.error("turn %s: reply refused by %s: %s", plan.turn_id, key.platform, exc)
            self.metrics.inc("send_errors", platform=key.platform.value, code=exc.code)
        else:
            self.metrics.observe("first_reply_seconds", max(time.time() - plan.received_at, 0),
                                 platform=key.platform.value)
        self.metrics.inc("languages", language=plan.language)

    def record(self, plan: TurnPlan, reply: Reply, outcome: GenerationOutcome | None) -> None:
        """The log, then the history, each written once per turn id; before the release, so a
        crash at any point loses nothing and doubles nothing."""
        key = plan.key
        self.faults.check("record", plan.user_text)
        answer = reply.text
        # While the turn is in flight its messages are still in the inflight list.
        messages = self.store.turn_messages(key)
        self.conversation_log.record_turn(TurnRecord(
            key=key, messages=tuple(messages), user_text=plan.user_text,
            thumbnails=self._thumbnails(plan),
            reply_text=answer or "\n".join(reply.notices), language=plan.language,
            model=self.settings.model_id if outcome is not None else None,
            latency_ms=(time.time() - plan.received_at) * 1000 if plan.received_at else None,
            prompt_tokens=outcome.prompt_tokens if outcome else None,
            completion_tokens=outcome.completion_tokens if outcome else None,
            error=outcome.error if outcome else None, turn_id=plan.turn_id,
            **self.guard_records(plan, outcome),
            transcript=plan.transcript, audio=self._kept_audio(plan)))
        self.store.set_language(key, plan.language, self.settings.history_ttl_seconds,
                                since=plan.received_at)
        entries: list[HistoryEntry] = []
        if plan.needs_model and not (outcome is not None and outcome.refused == "input"):
            entries.append(HistoryEntry(role="user", text=plan.user_text,
                                        image_ids=plan.image_ids, language=plan.language,
                                        spoken=plan.transcript is not None))
            if answer:
                entries.append(HistoryEntry(role="assistant", text=answer,
                                            language=plan.language))
        self.history.append(key, *entries, once=self.store.done_marker(plan.turn_id),
                            since=plan.received_at)
        if plan.voice_notes and self.voice is not None:  # heard and logged: the audio goes
            self.voice.drop(plan.turn_id, [slot for slot, _ in plan.voice_notes])

    def _kept_audio(self, plan: TurnPlan) -> tuple[tuple[bytes, str], ...]:
        """The turn's voice notes for the log, when ASR_KEEP_AUDIO keeps them."""
        if not self.settings.asr_keep_audio or self.voice is None:
            return ()
        voice = self.voice
        return tuple((data, mime) for slot, mime in plan.voice_notes
                     if (data := voice.load(plan.turn_id, slot)) is not None)

    def _thumbnails(self, plan: TurnPlan) -> tuple[bytes, ...]:
        ids = plan.thumbnail_ids
        if not ids:  # a plan from before thumbnails were made at download time
            return tuple(make_thumbnail(data) for i in plan.image_ids
                         if (data := self.history.image(plan.key, i)))
        return tuple(data for i in ids if (data := self.history.image(plan.key, i)))

    def release(self, plan: TurnPlan, lease: str) -> bool:
        """End the turn; True when more messages are waiting for the next one."""
        self.store.finish_turn(plan.key, lease)
        if self.backlog is not None:
            self.backlog.done(plan.turn_id)
        return self.store.has_work(plan.key)

    # ================================================================ moderation
    def screen(self, messages: list[InboundMessage]) -> Screened:
        """The block list and the per-person rate limit (`workers.moderation.AbuseScreen`);
        asking twice for a turn's messages gives the same answer (decided once per event)."""
        if self.abuse is None:
            return Screened(allowed=list(messages))
        return self.abuse.screen(messages)

    def hold(self, plan: TurnPlan, screened: Screened) -> TurnPlan:
        """Keep the messages the abuse controls held back from the model: the slow-down notice
        (at most once a window); when nothing is left, a turn with no model work and no other
        notice, marked for the log."""
        platform = plan.key.platform.value
        if screened.blocked:
            self.metrics.inc("blocked_messages", len(screened.blocked), platform=platform)
        if screened.limited:
            self.metrics.inc("rate_limited", len(screened.limited), platform=platform)
        notices = [text(Text.RATE_LIMITED, plan.language)] if screened.notify_limited else []
        if screened.allowed:
            return plan.model_copy(update={"notices": (*plan.notices, *notices)})
        return plan.model_copy(update={
            "notices": tuple(notices), "user_text": "", "attachments": (), "reset": False,
            "pin": None, "held": "blocked" if screened.blocked else "rate_limited"})

    def busy_notice(self, plan: TurnPlan) -> None:
        """Backpressure: when an answer has been waited for longer than BUSY_NOTICE_SECONDS,
        tell the person first (at most once a window per conversation); the turn still goes
        on. A courtesy: it never fails the turn."""
        window = self.settings.busy_notice_seconds
        if self.backlog is None or window <= 0 or not plan.needs_model:
            return
        try:
            if self.backlog.oldest_age() <= window or not self.backlog.notice_once(plan.key,
                                                                                  window):
                return
            reply = Reply(key=plan.key, in_reply_to=f"{plan.in_reply_to}:busy",
                          language=plan.language, notices=(text(Text.BUSY, plan.language),),
                          reply_context=plan.reply_context)
            self.run(self.adapter(plan.key.platform).send(
                reply, _TurnDeliveryLog(self.store, f"{plan.turn_id}:busy")))
            self.metrics.inc("busy_notices", platform=plan.key.platform.value)
        except Exception as exc:
            log.info("turn %s: busy notice not sent: %s", plan.turn_id, type(exc).__name__)

    def check_input(self, job: GenerationJob, turn: ChatTurn,
                    decisions: list[GuardDecision]) -> GenerationOutcome | None:
        """The guard on the person's text and photos; an outcome when it refuses the turn."""
        if self.moderator is None:
            return None
        decision = self.moderator.check_input(turn.text, turn.images, job.language)
        if decision is None:
            return None
        decisions.append(decision)
        if not decision.blocked:
            return None
        log.info("turn %s: refused before generation (%s)", job.turn_id, decision.label)
        return GenerationOutcome(refused="input", guard=_checks(decisions))

    def _draft_checker(self, job: GenerationJob) -> DraftChecker | None:
        """Streamed drafts shown only once the guard found them safe; cleared if flagged."""
        if self.moderator is None or not self.moderator.output_on:
            return None
        prompt = job.turns[-1].text if job.turns else ""
        return DraftChecker(self.moderator, prompt, job.language,
                            lambda draft: self.store.set_partial(job.turn_id, draft))

    def check_output(self, job: GenerationJob, outcome: GenerationOutcome,
                     decisions: list[GuardDecision],
                     drafts: DraftChecker | None) -> GenerationOutcome:
        """The guard on the answer: a flagged one (or a flagged draft) is withheld."""
        flagged_draft = False
        if drafts is not None:
            drafts.close()
            flagged_draft = drafts.flagged
            decisions.extend(d for d in drafts.decisions if d.blocked)
        answer = clean_reply(outcome.text)
        decision = None
        if self.moderator is not None and not flagged_draft and answer and not outcome.error:
            prompt = job.turns[-1].text if job.turns else ""
            decision = self.moderator.check_output(prompt, answer, job.language)
            if decision is not None:
                decisions.append(decision)
        update: dict[str, Any] = {"guard": _checks(decisions)}
        if flagged_draft or (decision is not None and decision.blocked):
            log.info("turn %s: answer withheld by the guard", job.turn_id)
            update.update(text="", refused="draft" if flagged_draft else "output",
                          withheld=answer)
        return outcome.model_copy(update=update)

    def refusal(self, plan: TurnPlan, outcome: GenerationOutcome) -> str:
        """What the person gets for a refused turn: the refusal, or the apology when the
        guard could not answer (GUARD_FAIL=closed)."""
        if any(c.blocked and c.label == "error" for c in outcome.guard):
            return text(Text.APOLOGY, plan.language)
        if self.moderator is not None:
            return self.moderator.refusal(plan.language)
        return text(Text.GUARD_REFUSAL, plan.language)

    def guard_records(self, plan: TurnPlan,
                      outcome: GenerationOutcome | None) -> dict[str, Any]:
        """The guard's decisions (and a held turn's mark) as the log keeps them."""
        records: dict[str, Any] = {}
        if plan.held:
            records["input_guard"] = GuardRecord(plan.held)
        for check in outcome.guard if outcome is not None else ():
            side = "input_guard" if check.side == "input" else "output_guard"
            records[side] = GuardRecord(check.label, check.categories, check.latency_ms)
        if outcome is not None and outcome.withheld:
            records["withheld"] = outcome.withheld
        return records

    # ================================================================ failures
    def give_up(self, plan: TurnPlan, lease: str, reason: BaseException) -> bool:
        """End a turn that cannot be answered: the apology (best effort), the record, the
        release. Returns True when more messages are waiting."""
        log.error("turn %s: giving up: %s", plan.turn_id, type(reason).__name__)
        self.metrics.inc("turns_failed", step=type(reason).__name__)
        if not self.store.claim(plan.key, lease):
            return False
        with self.leases.holding(plan.key, lease):
            reply = Reply(key=plan.key, in_reply_to=plan.in_reply_to, language=plan.language,
                          notices=(text(Text.APOLOGY, plan.language),),
                          reply_context=plan.reply_context)
            if not self.store.sent_parts(plan.turn_id):  # no answer went out yet
                self._send_apology(plan.turn_id, reply)
            try:
                self.record(plan, reply, GenerationOutcome(
                    error=f"{type(reason).__name__}: {reason}"))
            except redis.RedisError:
                raise
            except Exception:
                log.exception("turn %s: record failed after giving up", plan.turn_id)
            return self.release(plan, lease)

    def abort(self, key: ConversationKey, lease: str, reason: BaseException) -> None:
        """End a turn that failed before it had a plan: the apology, then the release."""
        self.metrics.inc("turns_failed", step=type(reason).__name__)
        messages = self.store.turn_messages(key)
        last = messages[-1] if messages else None
        language = (self.store.pinned_language(key) or self.store.language(key)
                    or next((m.language_hint for m in reversed(messages) if m.language_hint),
                            None) or self.settings.default_language)
        language = language if language in REPLY_INSTRUCTION else self.settings.default_language
        reply = Reply(key=key, in_reply_to=last.message_id if last else "", language=language,
                      notices=(text(Text.APOLOGY, language),),
                      reply_context=last.reply_context if last else {})
        self._send_apology(turn_id_of(lease), reply)
        self.store.finish_turn(key, lease)

    def _send_apology(self, turn_id: str, reply: Reply) -> None:
        try:
            self.run(self.adapter(reply.key.platform).send(
                reply, _TurnDeliveryLog(self.store, f"{turn_id}:apology")))
        except Exception as exc:  # the platform is away too: the turn still ends
            log.error("turn %s: apology not sent: %s", turn_id, type(exc).__name__)

    # ================================================================ while the model works
    def keep_typing(self, plan: TurnPlan, lease: str, started: float) -> bool:
        """Refresh the typing indicator, or the draft of a streamed answer; True while the turn
        is still being answered."""
        if time.time() - started > self.settings.turn_timeout_seconds:
            return False
        if not self.store.in_flight(plan.key, lease):
            return False
        partial = self.store.partial(plan.turn_id) if plan.stream else None
        if partial is not None:  # "": a draft the guard flagged, cleared
            try:
                draft_id = int(plan.turn_id[:8], 16) or 1
                self.run(self.adapter(plan.key.platform).show_partial(
                    plan.key, plan.reply_context, partial, draft_id))
                return True
            except Exception as exc:  # a draft is a courtesy, like typing
                log.info("draft not shown: %s", type(exc).__name__)
        self.typing(plan)
        return True

    def refresh_interval(self, plan: TurnPlan) -> float:
        if plan.stream:
            return self.settings.stream_interval_seconds
        return self.adapter(plan.key.platform).typing_interval()


def _checks(decisions: list[GuardDecision]) -> tuple[GuardCheck, ...]:
    return tuple(GuardCheck(**d.as_json()) for d in decisions)


def _wrong_language(answer: str, target: str) -> bool:
    """True when the answer is confidently in another language than `target`."""
    cleaned = clean_reply(answer)
    if len(clean(cleaned)) < MIN_CHECKED_LETTERS:
        return False
    return is_other_language(cleaned, target)


def _firmer(request: GenerationRequest, target: str) -> GenerationRequest:
    instruction = REPLY_INSTRUCTION.get(target) or REPLY_INSTRUCTION["en"]
    *earlier, last = request.turns
    nudged = ChatTurn(role=last.role, text=f"{last.text}\n\n({instruction})".strip(),
                      images=last.images)
    return replace(request, system=f"{request.system}\n\n{instruction}",
                   turns=(*earlier, nudged))


class _TurnDeliveryLog:
    """Which parts of the turn's reply went out, kept in Redis under the turn id."""

    def __init__(self, store: ConversationStore, turn_id: str) -> None:
        self._store, self._turn_id = store, turn_id
        self._sent = store.sent_parts(turn_id)

    def is_sent(self, part: int) -> bool:
        return str(part) in self._sent

    def mark_sent(self, part: int) -> None:
        self._store.mark_sent(self._turn_id, str(part))
        self._sent.add(str(part))
