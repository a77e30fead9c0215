"""The webhook's side of a conversation in Redis: accept each platform event exactly once, and
wake a worker only when the conversation was idle.

`Inbox.accept` (and `AsyncInbox.accept`, the same script on the web app's asyncio client) runs
one Lua script per message that:

- drops a redelivered event (SET NX on its event id);
- appends the message to the conversation's *pending* list, capped: beyond `max_pending` the
  oldest waiting messages are trimmed (RPUSH answers the length, so one LTRIM, no loop);
- puts the conversation on the *active* set (ZADD NX); when it was not there, nothing is
  under way for it, and the script LPUSHes the given wake-up (a Celery message built by
  `workers.celery_app.wake_up`) onto its broker queue. When it was there, a wake-up is already
  queued or a turn is in flight, and its holder starts the next turn when it ends (the worker's
  `finish_turn` keeps the conversation active while messages wait, and the worker then
  publishes again); a wake-up lost with a dead worker is the reconciler's.

So a message is never half-accepted: either it is pending (and, if the conversation was idle,
its wake-up is queued, in the same atomic step), or it was already seen. Once accepted, it is
answered even if its wake-up is lost: the reconciler finds it. One EVALSHA: SET, RPUSH,
EXPIRE, ZADD and, for an idle conversation, LPUSH (Redis counts 5 or 6 commands). The
worker's side of the same keys is `storage.conversations.ConversationStore`.

With `replicas` > 0 (REDIS_MIN_REPLICAS_ACK, Sentinel) the script and a `WAIT replicas wait_ms`
go in one non-transactional pipeline, on one connection (inside MULTI, WAIT would not block;
inside a script it is refused), and fewer acknowledgements raise `NotReplicated`: the webhook
answers 503 and the platform sends the event again. A duplicate refreshes its dedupe key's
expiry, a write, so the retry's WAIT covers it and, the replication stream being ordered,
every earlier write too: the original accept, made on another connection. Only once WAIT
proves a replica holds the message is it acknowledged, so a failover cannot lose it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio

from bot.kernel.messages import InboundMessage
from storage.conversations import member
from storage.keys import KeyBuilder

# KEYS: dedupe, pending, active, wake-up queue.
# ARGV: dedupe ttl, message, pending ttl, cap, now, member, wake-up message ('' for none).
_ACCEPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 0
end
local waiting = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local result = 1
local cap = tonumber(ARGV[4])
if waiting > cap then
  redis.call('LTRIM', KEYS[2], waiting - cap, -1)
  result = 2
end
if redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[6]) == 1 and ARGV[7] ~= '' then
  redis.call('LPUSH', KEYS[4], ARGV[7])
end
return result
"""


class NotReplicated(redis.RedisError):
    """The accept was written on the master, but fewer replicas than asked acknowledged it in
    time: answer 503 (the platform's retry is accepted, or refreshes and waits again)."""

    def __init__(self, wanted: int, acked: int) -> None:
        super().__init__(f"{acked} of {wanted} replica(s) acknowledged in time")
        self.wanted, self.acked = wanted, acked


def _replicated(results: list[Any], wanted: int) -> Acceptance | None:
    """The pipeline's (script, WAIT) answers: the acceptance, or None to load the script
    and run again (a new master after a failover has not got it). Raises what failed."""
    result, acked = results
    if isinstance(result, redis.exceptions.NoScriptError):
        return None
    for answer in (result, acked):
        if isinstance(answer, Exception):
            raise answer
    if int(acked) < wanted:
        raise NotReplicated(wanted, int(acked))
    return Acceptance(int(result))


class Acceptance(enum.IntEnum):
    """What `Inbox.accept` did; false only for a duplicate."""

    DUPLICATE = 0
    ACCEPTED = 1
    #: Accepted, and the conversation's oldest waiting message was dropped (backlog cap).
    ACCEPTED_DROPPED_OLDEST = 2


@dataclass(frozen=True)
class WakeUp:
    """A broker message the accept script LPUSHes onto `queue` when the conversation was idle
    (kombu's Redis envelope of a Celery task; `workers.celery_app.wake_up` builds it)."""

    queue: str
    payload: str


class _Accept:
    """The script and its arguments, shared by the blocking and the asyncio inbox."""

    def __init__(self, *, dedupe_ttl: int, pending_ttl: int, max_pending: int,
                 keys: KeyBuilder | None, replicas: int = 0, wait_ms: int = 500) -> None:
        self._keys = keys or KeyBuilder()
        self._replicas, self._wait_ms = replicas, wait_ms
        self._dedupe_ttl = dedupe_ttl
        self._pending_ttl = pending_ttl
        self._max_pending = max_pending

    def _call(self, message: InboundMessage, wake_up: WakeUp | None
              ) -> tuple[Sequence[str], Sequence[Any]]:
        key = message.key
        dedupe = self._keys.dedupe(key.platform, key.bot_id, message.event_id)
        # Without a wake-up the queue key is never touched; the pending list stands in for it
        # so that every key the script may touch is declared.
        queue = wake_up.queue if wake_up is not None else self._keys.pending(key)
        return ([dedupe, self._keys.pending(key), self._keys.active(), queue],
                [self._dedupe_ttl, message.model_dump_json(), self._pending_ttl,
                 self._max_pending, time.time(), member(key),
                 wake_up.payload if wake_up is not None else ""])


#: A rating (`MessageKind.RATING`): never queued for a turn; its task is published once per
#: event (the same dedupe key as a message's), so a redelivered webhook rates nothing twice.
_ACCEPT_RATING = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class Inbox(_Accept):
    """The accept path's Redis side, on a blocking client (Telegram polling, the local chats,
    and every test that queues messages)."""

    def __init__(self, client: redis.Redis, *, dedupe_ttl: int, pending_ttl: int,
                 max_pending: int = 50, keys: KeyBuilder | None = None, replicas: int = 0,
                 wait_ms: int = 500) -> None:
        super().__init__(dedupe_ttl=dedupe_ttl, pending_ttl=pending_ttl,
                         max_pending=max_pending, keys=keys, replicas=replicas, wait_ms=wait_ms)
        self._client = client
        self._script = client.register_script(_ACCEPT)
        self._rating = client.register_script(_ACCEPT_RATING)

    def accept_rating(self, message: InboundMessage, task: WakeUp) -> bool:
        """Publish a rating's task unless its event was seen; False for a redelivery."""
        key = message.key
        return bool(self._rating(
            keys=[self._keys.dedupe(key.platform, key.bot_id, message.event_id), task.queue],
            args=[self._dedupe_ttl, task.payload]))

    def accept(self, message: InboundMessage, wake_up: WakeUp | None = None) -> Acceptance:
        """Queue `message` for its conversation, and publish `wake_up` if the conversation was
        idle; DUPLICATE when its event was seen before.

        Raises `redis.RedisError` when Redis cannot be reached: then nothing was recorded, and
        the platform's redelivery will be accepted.
        """
        keys, args = self._call(message, wake_up)
        if not self._replicas:
            return Acceptance(int(cast(int, self._script(keys=keys, args=args))))
        for _attempt in range(3):  # a new master loads the script once
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self._replicas, self._wait_ms)
            done = _replicated(pipe.execute(raise_on_error=False), self._replicas)
            if done is not None:
                return done
            self._client.script_load(_ACCEPT)
        raise redis.exceptions.NoScriptError("the accept script did not load")


class AsyncInbox(_Accept):
    """The same accept on an asyncio client: the web app's webhooks, on its event loop."""

    def __init__(self, client: redis.asyncio.Redis, *, dedupe_ttl: int, pending_ttl: int,
                 max_pending: int = 50, keys: KeyBuilder | None = None, replicas: int = 0,
                 wait_ms: int = 500) -> None:
        super().__init__(dedupe_ttl=dedupe_ttl, pending_ttl=pending_ttl,
                         max_pending=max_pending, keys=keys, replicas=replicas, wait_ms=wait_ms)
        self._client = client
        self._script = client.register_script(_ACCEPT)
        self._rating = client.register_script(_ACCEPT_RATING)

    async def accept_rating(self, message: InboundMessage, task: WakeUp) -> bool:
        """`Inbox.accept_rating`, awaited."""
        key = message.key
        return bool(await self._rating(
            keys=[self._keys.dedupe(key.platform, key.bot_id, message.event_id), task.queue],
            args=[self._dedupe_ttl, task.payload]))

    async def accept(self, message: InboundMessage, wake_up: WakeUp | None = None
                     ) -> Acceptance:
        """`Inbox.accept`, awaited (one round trip: EVALSHA, or EVAL once after a restart)."""
        keys, args = self._call(message, wake_up)
        if not self._replicas:
            return Acceptance(int(cast(int, await self._script(keys=keys, args=args))))
        for _attempt in range(3):  # a new master loads the script once
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self._replicas, self._wait_ms)
            done = _replicated(await pipe.execute(raise_on_error=False), self._replicas)
            if done is not None:
                return done
            await self._client.script_load(_ACCEPT)
        raise redis.exceptions.NoScriptError("the accept script did not load")
