"""Celery tasks: thin wrappers over `workers.turn.TurnService`, which holds the logic.

The tasks are shared tasks: they bind to the Celery app the composition root builds
(`bot.composition.Services.celery`), which carries the process's services as `app.sealion`
(`TaskServices`); nothing is built when this module is imported.

A Celery message is a wake-up: the turn's state lives in Redis. How many hops a turn takes
depends on where the models are:

    a worker that hosts the models (queue "inference" too, as `sealion-bot dev`'s)
        process_conversation: start, hear, generate, deliver: one task, one message
    an I/O worker beside inference workers
        process_conversation (io) -> generate_reply (inference) -> deliver_reply (io),
        and transcribe_voice -> continue_after_hearing for voice notes first

Arguments cross as JSON and are validated with the models of `workers.protocol` on entry.
Failure rules are the turn service's (`workers.turn.service`); here a transient send error is
retried with capped backoff, then the turn ends with the apology: by `deliver_reply` retrying
itself, and, for a turn a task carried inline, by scheduling `deliver_reply` after the backoff
(`_send_refused`), with the same count of tries.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, cast

from celery import Celery, chain, shared_task

from adapters.base import TransientSendError
from bot.kernel.messages import ConversationKey, InboundMessage
from bot.kernel.settings import Settings
from storage.metrics import RedisMetrics
from workers.celery_app import INFERENCE_QUEUE, IO_QUEUE
from workers.protocol import (
    Deliver,
    Generate,
    GenerationJob,
    GenerationOutcome,
    Heard,
    HearingJob,
    Step,
    Transcribe,
    Turn,
    Wait,
)
from workers.turn import SendRefused, TurnBusy, TurnService

log = logging.getLogger(__name__)

#: The longest pause between two tries of a refused send.
MAX_SEND_BACKOFF_SECONDS = 60.0


class TaskServices(Protocol):
    """What the tasks run with: the composition root's `Services`, as `app.sealion`."""

    settings: Settings
    #: This worker hosts the models (it consumes the inference queue): a turn's model steps
    #: run here, without a hop.
    hosts_models: bool

    @property
    def turns(self) -> TurnService: ...

    @property
    def metrics(self) -> RedisMetrics: ...

    def purge_log(self) -> None: ...


def services(app: Celery) -> TaskServices:
    return cast(TaskServices, app.sealion)  # type: ignore[attr-defined]


@shared_task(bind=True, name="workers.tasks.process_conversation", max_retries=None)
def process_conversation(self: Any, key: dict[str, Any]) -> str:
    """Start the conversation's next turn, if it has waiting messages and none in flight."""
    sv = services(self.app)
    conversation = ConversationKey.model_validate(key)
    try:
        step, more = sv.turns.answer(conversation, models_here=sv.hosts_models)
    except SendRefused as refused:
        step, more = None, _send_refused(sv, refused)
    if isinstance(step, Wait):
        raise self.retry(countdown=step.countdown)
    if more:
        _next_turn(conversation)
    return _send_on(sv, step) if step is not None else "answered"


def _send_on(sv: TaskServices, step: Step) -> str:
    """Send a step this worker does not take to its queue (the inference workers')."""
    turns = sv.turns
    if isinstance(step, Transcribe):
        job = step.job.model_dump(mode="json")
        chain(
            transcribe_voice.s(job).set(queue=INFERENCE_QUEUE),
            continue_after_hearing.s(job).set(queue=IO_QUEUE),
        ).apply_async()
        turns.leases.own(step.job.key, step.job.lease)
    elif isinstance(step, Generate):
        chain(
            generate_reply.s(step.job.model_dump(mode="json")).set(queue=INFERENCE_QUEUE),
            deliver_reply.s(step.turn.model_dump(mode="json"), step.lease).set(queue=IO_QUEUE),
        ).apply_async()
        # Vouch for the turn only once its job is on the queue: if the publish failed, the
        # lease lapses and a reconciler resumes the turn.
        turns.leases.own(step.turn.key, step.lease)
        try:
            keep_typing.apply_async(args=[step.turn.model_dump(mode="json"), step.lease,
                                          time.time()],
                                    countdown=turns.refresh_interval(step.turn))
        except Exception as exc:  # typing is a courtesy
            log.info("typing not scheduled: %s", type(exc).__name__)
    return step.kind


def _next_turn(key: ConversationKey) -> None:
    """More messages wait: start their turn (the holder of a turn starts the next one)."""
    process_conversation.apply_async(args=[key.model_dump(mode="json")], queue=IO_QUEUE)


@shared_task(bind=True, name="workers.tasks.transcribe_voice")
def transcribe_voice(self: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Hear a turn's voice notes (queue "inference"); batched with other turns' clips."""
    heard = services(self.app).turns.transcribe(HearingJob.model_validate(job))
    return [item.model_dump(mode="json") for item in heard]


@shared_task(bind=True, name="workers.tasks.continue_after_hearing")
def continue_after_hearing(self: Any, heard: list[dict[str, Any]], job: dict[str, Any]) -> str:
    """Plan the turn with what was heard, then generate or deliver (queue "io")."""
    sv = services(self.app)
    hearing = HearingJob.model_validate(job)
    step = sv.turns.after_hearing(hearing, [Heard.model_validate(item) for item in heard])
    if isinstance(step, Deliver) or (sv.hosts_models and isinstance(step, Generate)):
        try:
            more = sv.turns.carry_on(step)
        except SendRefused as refused:
            more = _send_refused(sv, refused)
        if more:
            _next_turn(hearing.key)
        return step.kind
    return _send_on(sv, step)


@shared_task(bind=True, name="workers.tasks.generate_reply")
def generate_reply(self: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Run the model on one job (queue "inference"); batched with its neighbours."""
    outcome = services(self.app).turns.generate(GenerationJob.model_validate(job))
    return outcome.model_dump(mode="json")


@shared_task(bind=True, name="workers.tasks.deliver_reply", max_retries=None)
def deliver_reply(self: Any, outcome: dict[str, Any] | None, turn: dict[str, Any],
                  lease: str) -> None:
    """Send the answer, write the log and history, end the turn, start the next one."""
    sv = services(self.app)
    prepared = Turn.model_validate(turn)
    result = GenerationOutcome.model_validate(outcome) if outcome is not None else None
    try:
        more = sv.turns.deliver(prepared, lease, result, attempt=self.request.retries)
    except TurnBusy as exc:  # a duplicate of a delivery in progress: look again later
        raise self.retry(countdown=max(exc.retry_after, 1.0)) from exc
    except TransientSendError as exc:
        sv.metrics.inc("send_errors", platform=prepared.key.platform.value,
                       code=exc.code or "retry")
        if self.request.retries < sv.settings.send_max_retries:
            raise self.retry(countdown=_backoff(exc, self.request.retries)) from exc
        more = sv.turns.give_up(prepared.key, lease, exc, turn=prepared)
    if more:
        _next_turn(prepared.key)


def _backoff(exc: TransientSendError, tries: int) -> float:
    """The pause before the next try: the platform's own retry-after, doubled on every further
    refusal, capped."""
    return min(max(exc.retry_after, 0.5) * 2 ** tries, MAX_SEND_BACKOFF_SECONDS)


def _send_refused(sv: TaskServices, refused: SendRefused) -> bool:
    """A send refused in a turn this task carried itself (start, generate, deliver in one
    task): its delivery goes to `deliver_reply` after the backoff, as the first retry of the
    queued path (the parts already sent are skipped: the per-part sent markers), or the turn
    ends with the apology when no retry is allowed. True when more messages wait now."""
    step, exc = refused.step, refused.error
    sv.metrics.inc("send_errors", platform=step.turn.key.platform.value,
                   code=exc.code or "retry")
    if sv.settings.send_max_retries <= 0:
        return sv.turns.give_up(step.turn.key, step.lease, exc, turn=step.turn)
    outcome = step.outcome.model_dump(mode="json") if step.outcome is not None else None
    deliver_reply.apply_async(args=[outcome, step.turn.model_dump(mode="json"), step.lease],
                              countdown=_backoff(exc, 0), queue=IO_QUEUE, retries=1)
    return False


@shared_task(bind=True, name="workers.tasks.deliver_operator_reply", max_retries=None)
def deliver_operator_reply(self: Any, key: dict[str, Any], text: str, author: str,
                           reply_id: str, language: str) -> str:
    """Send an answer a person of the team wrote in the console (hand-off), log it as theirs
    and keep it in the history; a transient refusal is retried with backoff."""
    sv = services(self.app)
    conversation = ConversationKey.model_validate(key)
    try:
        error = sv.turns.stages.delivery.operator_reply(
            conversation, text, author=author, reply_id=reply_id, language=language)
    except TransientSendError as exc:
        if self.request.retries < sv.settings.send_max_retries:
            raise self.retry(countdown=_backoff(exc, self.request.retries)) from exc
        error = "not delivered: the platform was unavailable"
        sv.turns.stages.delivery.record_operator_reply(conversation, text, author=author,
                                                       reply_id=reply_id, language=language,
                                                       error=error)
    return error or "sent"


@shared_task(bind=True, name="workers.tasks.record_rating")
def record_rating(self: Any, message: dict[str, Any]) -> str:
    """A 👍/👎 (a button or a reaction): stored against its answer, never a turn."""
    sv = services(self.app)
    stored = sv.turns.stages.delivery.rate(InboundMessage.model_validate(message))
    return "ignored" if stored is None else str(stored)


@shared_task(bind=True, name="workers.tasks.purge_conversation_log")
def purge_conversation_log(self: Any) -> None:
    """Apply RETENTION_DAYS to the conversation log (scheduled daily by Celery beat)."""
    services(self.app).purge_log()


@shared_task(bind=True, name="workers.tasks.keep_typing")
def keep_typing(self: Any, turn: dict[str, Any], lease: str, started: float) -> None:
    """Refresh the typing indicator every few seconds while another worker generates."""
    turns = services(self.app).turns
    prepared = Turn.model_validate(turn)
    if turns.keep_typing(prepared, lease, started):
        keep_typing.apply_async(args=[turn, lease, started],
                                countdown=turns.refresh_interval(prepared))
