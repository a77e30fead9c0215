"""Waiting for what the service sends to the platform stand-in, and for proof that nothing more
will be sent: no "nothing arrived after a fixed sleep".

A conversation has work while any of its *pending* list (accepted by the webhook, in the request
itself), *inflight* list (the turn's messages) or turn lease exists: `finish_turn` deletes them
only after the turn's replies were sent (storage/conversations.py). So once a chat has none of
them, every turn of it is over and all it will ever be sent has been sent. Deployments register
their Redis database here (`watch`); `wait_settled` looks at each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from storage.keys import KeyBuilder, glob_escape

_watched: dict[str, redis.Redis] = {}
#: The parts of a conversation that exist while it has work.
_WORK = ("pending", "inflight", "turn")


def watch(redis_url: str) -> None:
    """Look at the Redis database `redis_url` in `wait_settled` (a running deployment's)."""
    _watched.setdefault(redis_url, redis.Redis.from_url(redis_url, socket_timeout=10))


def unwatch(redis_url: str) -> None:
    client = _watched.pop(redis_url, None)
    if client is not None:
        client.close()


def has_work(client: redis.Redis, chat_id: int | str) -> bool:
    """Whether a conversation in chat `chat_id` (on any platform or bot, of any user) has
    messages waiting or a turn in progress."""
    prefix = f"{KeyBuilder().prefix}:conv:*:{glob_escape(str(chat_id))}:*"
    return any(next(iter(client.scan_iter(match=f"{prefix}:{part}", count=1000)), None)
               for part in _WORK)


def wait_settled(*chat_ids: int | str, timeout: float = 60.0) -> None:
    """Wait until no watched deployment has work for any of `chat_ids`: every turn of those chats
    is over, its replies sent."""
    wait_until(lambda: not any(has_work(client, chat) for client in list(_watched.values())
                               for chat in chat_ids),
               timeout, f"the turns of chat(s) {', '.join(map(str, chat_ids))} to finish")


def sent_to(stand_in: Any, chat_id: int, method: str = "sendMessage") -> list:
    return [c for c in stand_in.calls_to(method)
            if str(c.params.get("chat_id")) == str(chat_id) and c.status == 200]


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def wait_count(sent: Callable[[], list], chat_id: int | str, count: int,
               timeout: float = 60.0) -> list:
    """Wait for `count` messages in `sent()`, then for the chat's turns to finish; exactly
    `count` were sent."""
    wait_until(lambda: len(sent()) >= count, timeout, f"{count} message(s) to chat {chat_id}")
    wait_settled(chat_id, timeout=timeout)
    calls = sent()
    assert len(calls) == count, calls
    return calls


def wait_replies(stand_in: Any, chat_id: int, count: int = 1, timeout: float = 60.0) -> list:
    """Wait for `count` Telegram messages sent to the chat and for its turns to finish; exactly
    `count` were sent."""
    return wait_count(lambda: sent_to(stand_in, chat_id), chat_id, count, timeout)
