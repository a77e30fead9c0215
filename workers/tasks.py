"""Celery tasks: thin wrappers over `workers.pipeline`, which holds the logic."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import chain
from celery.exceptions import MaxRetriesExceededError

from adapters.base import TransientSendError
from bot.conversation import TurnPlan
from bot.messages import ConversationKey
from workers import lifecycle  # noqa: F401  (worker signals)
from workers import pipeline
from workers.celery_app import INFERENCE_QUEUE, IO_QUEUE, app
from workers.runtime import runtime

log = logging.getLogger(__name__)

#: A reply that cannot be sent after this many tries is given up (the turn still ends).
MAX_SEND_RETRIES = 8


@app.task(bind=True, name="workers.tasks.process_conversation", max_retries=None)
def process_conversation(self: Any, key: dict[str, Any]) -> str:
    """Start the conversation's next turn, if it has waiting messages and none in flight."""
    rt = runtime()
    step = pipeline.prepare(rt, ConversationKey.model_validate(key))
    if step.kind == "wait":
        raise self.retry(countdown=step.countdown)
    if step.kind == "generate":
        chain(
            generate_reply.s(step.request).set(queue=INFERENCE_QUEUE),
            deliver_reply.s(step.plan).set(queue=IO_QUEUE),
        ).apply_async()
        keep_typing.apply_async(args=[step.plan, time.time()],
                                countdown=_refresh_interval(rt, TurnPlan.model_validate(step.plan)))
    elif step.kind == "deliver":
        deliver_reply.apply_async(args=[None, step.plan], queue=IO_QUEUE)
    return step.kind


@app.task(name="workers.tasks.generate_reply")
def generate_reply(request: dict[str, Any]) -> dict[str, Any]:
    """Run the model on one request (queue "inference"); batched with its neighbours."""
    return pipeline.generate(runtime(), request)


@app.task(bind=True, name="workers.tasks.deliver_reply", max_retries=MAX_SEND_RETRIES)
def deliver_reply(self: Any, result: dict[str, Any] | None, plan: dict[str, Any]) -> None:
    """Send the answer, write the history, end the turn, start the next one."""
    rt = runtime()
    try:
        more = pipeline.deliver(rt, result, plan)
    except TransientSendError as exc:
        turn = TurnPlan.model_validate(plan)
        rt.metrics.inc("send_errors", platform=turn.key.platform.value, code=exc.code or "retry")
        try:
            # Back off: the platform's own retry-after, doubled on every further refusal.
            countdown = min(exc.retry_after * 2 ** self.request.retries, 300)
            raise self.retry(countdown=countdown)
        except MaxRetriesExceededError:
            log.error("giving up sending turn %s: %s", plan.get("turn_id"), exc)
            rt.store.finish_turn(turn.key, turn.turn_id)
            more = rt.store.has_work(turn.key)
    if more:
        process_conversation.apply_async(args=[plan["key"]], queue=IO_QUEUE)


@app.task(name="workers.tasks.purge_conversation_log")
def purge_conversation_log() -> None:
    """Apply RETENTION_DAYS to the conversation log (scheduled daily by Celery beat)."""
    from storage.log import purge_expired

    purge_expired(runtime().settings)


@app.task(name="workers.tasks.keep_typing")
def keep_typing(plan: dict[str, Any], started: float) -> None:
    """Refresh the typing indicator every few seconds while the turn is being answered."""
    rt = runtime()
    turn = TurnPlan.model_validate(plan)
    if pipeline.keep_typing(rt, turn, started):
        keep_typing.apply_async(args=[plan, started], countdown=_refresh_interval(rt, turn))


def _refresh_interval(rt, turn: TurnPlan) -> float:
    if turn.stream:
        return rt.settings.stream_interval_seconds
    return rt.adapter(turn.key.platform).typing_interval()
