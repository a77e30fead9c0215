"""Fault injection in production shape: separate `sealion-bot api` and `sealion-bot worker`
processes, a real redis-server with appendonly yes and appendfsync always, tiny Qwen3-VL, the
Telegram stand-in behind a proxy that can refuse connections.

Every case asserts that every message is answered exactly once within its target. Recovery is
made quick with short leases and reconciler intervals (FAST_RECOVERY; the defaults are measured
by benchmarks/recovery.py); CELERY_VISIBILITY_TIMEOUT keeps its default of an hour, so nothing
here depends on Celery redelivering a dead worker's tasks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.kernel.languages import SUPPORTED_LANGUAGES
from bot.kernel.texts import Text, text
from tests.conftest import new_chat_id
from tests.faults.stack import FAST_RECOVERY, Stack
from tests.helpers.images import image_bytes
from tests.helpers.updates import photo_update, text_update
from tests.helpers.waiting import wait_until
from workers.faults import STEPS

APOLOGIES = {text(Text.APOLOGY, language) for language in SUPPORTED_LANGUAGES}
#: Seconds within which every affected chat must be answered once a worker can run again.
TARGET = 60.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory, telegram_api) -> Iterator[Stack]:
    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    root = tmp_path_factory.mktemp("faults")
    # Forced to write every token it is allowed (MAX_NEW_TOKENS): a generation takes a while.
    checkpoint = build_tiny_qwen3_vl(root / "model", generation={"min_new_tokens": 4000})
    telegram_api.reset()
    built = Stack(root, telegram_api, checkpoint, **FAST_RECOVERY)
    built.start_worker()
    yield built
    built.close()
    assert telegram_api.spec_errors == [], telegram_api.spec_errors


def test_an_exception_in_each_step_ends_in_one_answer_or_apology(stack):
    stack.telegram.add_file("photo-large", image_bytes(320, 240, fmt="JPEG"),
                            file_path="photos/red.jpg")
    chats = {step: new_chat_id() for step in STEPS}
    for step, chat in chats.items():
        body = f"#fault-{step} What is in this picture?"
        update = (photo_update(chat, caption=body) if step == "fetch"
                  else text_update(chat, body))
        assert stack.post(update) == 200
    # The download failing leaves a notice and the answer still comes; the log write failing
    # after the answer went out adds nothing; every other failure ends in the apology.
    stack.expect_answers({chat: 2 if step == "fetch" else 1 for step, chat in chats.items()},
                         TARGET)
    for step, chat in chats.items():
        answers = stack.answers(chat)
        if step == "fetch":
            assert answers[0] in APOLOGIES and answers[1] not in APOLOGIES, answers
        elif step == "record":
            assert answers[0] not in APOLOGIES, answers
        else:
            assert answers[0] in APOLOGIES, (step, answers)


def test_a_worker_killed_mid_generation_is_answered_after_a_restart(stack):
    worker = stack.worker
    assert worker is not None
    chats = [new_chat_id() for _ in range(3)]
    for n, chat in enumerate(chats):
        assert stack.post(text_update(chat, f"Write a long story number {n}.")) == 200
    wait_until(stack.generating, 60, "a generation to begin")
    worker.kill()
    stack.start_worker()
    ready = time.monotonic()
    stack.expect_answers({c: 1 for c in chats}, TARGET)
    assert time.monotonic() - ready < TARGET + 5


def test_redis_killed_and_restarted_loses_nothing_and_workers_survive(stack):
    worker = stack.worker
    assert worker is not None and worker.process is not None
    pid = worker.process.pid
    before = [new_chat_id() for _ in range(3)]
    updates = {chat: text_update(chat, "Apa khabar? Boleh bantu saya?") for chat in before}
    for chat in before:
        assert stack.post(updates[chat]) == 200
    stack.redis.kill()  # mid-turn: these are being answered
    during = [new_chat_id() for _ in range(2)]
    for chat in during:
        updates[chat] = text_update(chat, "Hello? Are you there?")
        assert stack.post(updates[chat]) == 503  # refused: the platform sends it again
    time.sleep(3.0)
    stack.redis.start()  # on its append-only file
    restarted = time.monotonic()
    for chat in during + before[:1]:  # the redeliveries (one of an accepted event)
        assert stack.post(updates[chat]) == 200
    stack.expect_answers({c: 1 for c in before + during}, TARGET)
    assert time.monotonic() - restarted < TARGET + 5
    assert worker.process.poll() is None and worker.process.pid == pid, worker.tail()
    assert "Unrecoverable error" not in worker.tail(400)
    assert stack.api.poll() is None


def test_a_platform_refusing_connections_for_a_while(stack):
    stack.proxy.refuse()
    chats = [new_chat_id() for _ in range(2)]
    try:
        for chat in chats:
            assert stack.post(text_update(chat, "Good morning!")) == 200
        time.sleep(6.0)  # sending fails: connection refused, retried with backoff
        assert all(stack.answers(c) == [] for c in chats)
    finally:
        stack.proxy.allow()
    stack.expect_answers({c: 1 for c in chats}, TARGET)
