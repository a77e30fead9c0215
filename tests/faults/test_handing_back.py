"""A worker told to stop (SIGTERM) in the middle of a turn: it finishes the step it runs within
STOP_GRACE_SECONDS, or abandons it and hands the turn back; either way another worker answers
the turn at once, exactly once, and not after LEASE_SECONDS (the lease lapsing and a reconciler
sweeping, which the settings here put a minute away).

Production shape (tests/faults/stack.py): `sealion-bot api` and two `sealion-bot worker`
processes on a real redis-server; the model is the OpenAI-compatible stand-in, whose answers a
test holds for as long as it likes (a long generation)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import new_chat_id
from tests.faults.stack import Stack
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.processes import alive, command_line, process_tree
from tests.helpers.updates import text_update
from tests.helpers.waiting import wait_until

#: The lease and the reconciler: without the hand-back, a stopped worker's turn waits this long.
LEASE_SECONDS = 60
STOP_GRACE = 5


@pytest.fixture()
def model() -> Iterator[ChatStandIn]:
    stand_in = ChatStandIn().start()
    yield stand_in
    stand_in.stop()
    assert stand_in.spec_errors == [], stand_in.spec_errors


@pytest.fixture()
def stack(tmp_path, telegram_api, model) -> Iterator[Stack]:
    telegram_api.reset()
    built = Stack(tmp_path, telegram_api, Path("no-checkpoint"), MODEL_BACKEND="openai",
                  OPENAI_BASE_URL=model.v1, OPENAI_MODEL=model.model,
                  LEASE_SECONDS=str(LEASE_SECONDS), LEASE_HEARTBEAT_SECONDS="1",
                  RECONCILE_INTERVAL_SECONDS=str(LEASE_SECONDS),
                  RECONCILE_GRACE_SECONDS=str(LEASE_SECONDS),
                  STOP_GRACE_SECONDS=str(STOP_GRACE))
    try:
        yield built
    finally:
        built.close()
    assert telegram_api.spec_errors == [], telegram_api.spec_errors


def _generating_on_a(stack: Stack, model: ChatStandIn, hold: float):
    """Worker A alone takes a turn and is generating it (the model holds the answer `hold`
    seconds); then worker B starts. Returns (A, B, chat)."""
    a = stack.start_worker()
    model.set_delay("chat", hold)
    chat = new_chat_id()
    assert stack.post(text_update(chat, "Ceritakan tentang Borobudur, yang panjang ya.")) == 200
    wait_until(lambda: model.in_flight("chat") == 1, 60, "worker A to generate")
    b = stack.start_worker()
    assert a.process is not None and b.process is not None
    return a, b, chat


def _sigterm(process: subprocess.Popen) -> tuple[float, set]:
    tree = process_tree(process.pid)
    os.kill(process.pid, signal.SIGTERM)  # the worker process only, as a process manager does
    return time.monotonic(), tree


def test_a_generation_past_the_grace_is_handed_back_and_resumed_at_once(stack, model):
    a, b, chat = _generating_on_a(stack, model, hold=600)
    assert a.process is not None
    told, tree = _sigterm(a.process)
    a.process.wait(STOP_GRACE + 10)
    stopped = time.monotonic() - told
    log = a.log_path.read_text(errors="replace")
    assert "step(s) still running after" in log and "handed 1 turn(s) back" in log, a.tail()
    assert not alive(tree), [command_line(pid) for pid, _ in alive(tree)]
    # The model answers B at once (A's request, held, goes nowhere: A is gone).
    model.set_delay("chat", 0)
    wait_until(lambda: stack.answers(chat), 20, "the answer from worker B")
    answered = time.monotonic() - told
    assert answered < LEASE_SECONDS / 2, answered
    assert len(model.calls_to("chat")) == 2  # A's abandoned generation, and B's
    stack.settled(chat)
    assert len(stack.answers(chat)) == 1, stack.answers(chat)
    assert b.process is not None and b.process.poll() is None
    print(f"\nA stopped {stopped:.1f}s after SIGTERM (grace {STOP_GRACE}s); B answered "
          f"{answered - stopped:.1f}s later")


def test_a_step_that_ends_within_the_grace_ends_there_and_the_turn_goes_on(stack, model):
    a, b, chat = _generating_on_a(stack, model, hold=4.0)
    assert a.process is not None
    told, tree = _sigterm(a.process)
    a.process.wait(STOP_GRACE + 10)
    stopped = time.monotonic() - told
    log = a.log_path.read_text(errors="replace")
    assert "still running after" not in log, a.tail()
    assert not alive(tree), [command_line(pid) for pid, _ in alive(tree)]
    wait_until(lambda: stack.answers(chat), 20, "the answer from worker B")
    answered = time.monotonic() - told
    assert answered < LEASE_SECONDS / 2, answered
    # A's generation was kept (the outcome, by turn id): the model was asked once.
    assert len(model.calls_to("chat")) == 1
    stack.settled(chat)
    assert len(stack.answers(chat)) == 1, stack.answers(chat)
    print(f"\nA finished its step and stopped {stopped:.1f}s after SIGTERM; the answer went "
          f"out {answered - stopped:.1f}s later")
