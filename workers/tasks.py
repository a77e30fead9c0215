"""Celery tasks: thin wrappers over `workers.pipeline.TurnService`, which holds the logic.

Arguments cross as JSON and are validated with the models of `workers.jobs` on entry. Failure
rules: a Redis error propagates (the turn's lease lapses and a reconciler restarts it); a
transient send error is retried with capped backoff, then the turn ends with the apology;
anything else ends the turn with the apology at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import chain

from adapters.base import TransientSendError
from bot.conversation import TurnPlan
from bot.messages import ConversationKey
from workers import (
    lifecycle,  # noqa: F401  (worker signals)
)
from workers.celery_app import INFERENCE_QUEUE, IO_QUEUE, app
from workers.jobs import (
    Deliver,
    Generate,
    GenerationJob,
    GenerationOutcome,
    Step,
    Transcribe,
    Wait,
)
from workers.pipeline import TurnBusy
from workers.runtime import runtime
from workers.voice import Heard, HearingJob

log = logging.getLogger(__name__)

#: The longest pause between two tries of a refused send.
MAX_SEND_BACKOFF_SECONDS = 60.0


@app.task(bind=True, name="workers.tasks.process_conversation", max_retries=None)
def process_conversation(self: Any, key: dict[str, Any]) -> str:
    """Start the conversation's next turn, if it has waiting messages and none in flight."""
    step = runtime().turns.start(ConversationKey.model_validate(key))
    if isinstance(step, Wait):
        raise self.retry(countdown=step.countdown)
    return _dispatch(step)


def _dispatch(step: Step) -> str:
    """Send the turn's next step to its queue."""
    turns = runtime().turns
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
            deliver_reply.s(step.plan.model_dump(mode="json"), step.lease).set(queue=IO_QUEUE),
        ).apply_async()
        # Vouch for the turn only once its job is on the queue: if the publish failed, the
        # lease lapses and a reconciler resumes the turn.
        turns.leases.own(step.plan.key, step.lease)
        try:
            keep_typing.apply_async(args=[step.plan.model_dump(mode="json"), step.lease,
                                          time.time()],
                                    countdown=turns.refresh_interval(step.plan))
        except Exception as exc:  # typing is a courtesy
            log.info("typing not scheduled: %s", type(exc).__name__)
    elif isinstance(step, Deliver):
        deliver_reply.apply_async(
            args=[step.outcome.model_dump(mode="json") if step.outcome else None,
                  step.plan.model_dump(mode="json"), step.lease], queue=IO_QUEUE)
        turns.leases.own(step.plan.key, step.lease)
    return step.kind


@app.task(name="workers.tasks.transcribe_voice")
def transcribe_voice(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Hear a turn's voice notes (queue "inference"); batched with other turns' clips."""
    heard = runtime().turns.transcribe(HearingJob.model_validate(job))
    return [item.model_dump(mode="json") for item in heard]


@app.task(name="workers.tasks.continue_after_hearing")
def continue_after_hearing(heard: list[dict[str, Any]], job: dict[str, Any]) -> str:
    """Plan the turn with what was heard, then generate or deliver (queue "io")."""
    step = runtime().turns.after_hearing(HearingJob.model_validate(job),
                                         [Heard.model_validate(item) for item in heard])
    return _dispatch(step)


@app.task(name="workers.tasks.generate_reply")
def generate_reply(job: dict[str, Any]) -> dict[str, Any]:
    """Run the model on one job (queue "inference"); batched with its neighbours."""
    outcome = runtime().turns.generate(GenerationJob.model_validate(job))
    return outcome.model_dump(mode="json")


@app.task(bind=True, name="workers.tasks.deliver_reply", max_retries=None)
def deliver_reply(self: Any, outcome: dict[str, Any] | None, plan: dict[str, Any],
                  lease: str) -> None:
    """Send the answer, write the log and history, end the turn, start the next one."""
    rt = runtime()
    turn = TurnPlan.model_validate(plan)
    result = GenerationOutcome.model_validate(outcome) if outcome is not None else None
    try:
        more = rt.turns.deliver(turn, lease, result)
    except TurnBusy as exc:  # a duplicate of a delivery in progress: look again later
        raise self.retry(countdown=max(exc.retry_after, 1.0)) from exc
    except TransientSendError as exc:
        rt.metrics.inc("send_errors", platform=turn.key.platform.value, code=exc.code or "retry")
        if self.request.retries < rt.settings.send_max_retries:
            # Back off: the platform's own retry-after, doubled on every further refusal.
            countdown = min(max(exc.retry_after, 0.5) * 2 ** self.request.retries,
                            MAX_SEND_BACKOFF_SECONDS)
            raise self.retry(countdown=countdown) from exc
        more = rt.turns.give_up(turn, lease, exc)
    except redis.RedisError:
        raise  # the lease lapses; a reconciler resumes the turn from its records
    except Exception as exc:
        log.exception("turn %s: delivery failed", turn.turn_id)
        more = rt.turns.give_up(turn, lease, exc)
    if more:
        process_conversation.apply_async(args=[turn.key.model_dump(mode="json")],
                                         queue=IO_QUEUE)


@app.task(name="workers.tasks.purge_conversation_log")
def purge_conversation_log() -> None:
    """Apply RETENTION_DAYS to the conversation log (scheduled daily by Celery beat)."""
    from storage.log import purge_expired

    purge_expired(runtime().settings)


@app.task(name="workers.tasks.keep_typing")
def keep_typing(plan: dict[str, Any], lease: str, started: float) -> None:
    """Refresh the typing indicator every few seconds while the turn is being answered."""
    turns = runtime().turns
    turn = TurnPlan.model_validate(plan)
    if turns.keep_typing(turn, lease, started):
        keep_typing.apply_async(args=[plan, lease, started],
                                countdown=turns.refresh_interval(turn))

