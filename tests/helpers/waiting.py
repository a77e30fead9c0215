"""Waiting for what the service sends to the platform stand-in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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


def wait_replies(stand_in: Any, chat_id: int, count: int = 1, timeout: float = 60.0,
                 settle: float = 1.5) -> list:
    """Wait for `count` messages sent to the chat, then check no more arrive for `settle` s."""
    wait_until(lambda: len(sent_to(stand_in, chat_id)) >= count, timeout,
               f"{count} message(s) to chat {chat_id}")
    time.sleep(settle)
    calls = sent_to(stand_in, chat_id)
    assert len(calls) == count, [c.params.get("text") for c in calls]
    return calls
