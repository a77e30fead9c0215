"""Recovery times with the default settings, in production shape.

Starts a redis-server with appendonly yes and appendfsync always, `sealion-bot api` and
`sealion-bot worker` as separate processes on a tiny Qwen3-VL checkpoint, and the Telegram
stand-in (tests/faults/stack.py). Then:

1. worker kill: CHATS conversations write at once; while their answers are being generated the
   worker is SIGKILLed and a new one is started at once. Printed: seconds from the kill to the
   new worker being ready (model loaded), and from the kill to the last chat answered.
2. Redis restart: CHATS conversations write at once; Redis is SIGKILLed while they are being
   answered, webhooks during the outage get 503 and are sent again once Redis is back on its
   append-only file. Printed: seconds from the restart to the last chat answered, and whether
   the worker process survived.

Every chat must be answered exactly once (checked). Usage: python benchmarks/recovery.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import TELEGRAM_TOKEN  # noqa: E402
from tests.faults.stack import Stack  # noqa: E402
from tests.helpers.checkpoints import build_tiny_qwen3_vl  # noqa: E402
from tests.helpers.telegram_api import TelegramStandIn  # noqa: E402
from tests.helpers.updates import text_update  # noqa: E402
from tests.helpers.waiting import sent_to, wait_until  # noqa: E402

#: Generous: with the defaults (LEASE_SECONDS=30, RECONCILE_INTERVAL_SECONDS=10) recovery is
#: expected well inside two minutes.
TARGET = 120.0


def worker_kill(stack: Stack, chats: list[int]) -> tuple[float, float]:
    for n, chat in enumerate(chats):
        assert stack.post(text_update(chat, f"Tell me a long story, number {n}.")) == 200
    wait_until(stack.generating, 120, "a generation to begin")
    assert stack.worker is not None
    stack.worker.kill()
    killed = time.monotonic()
    stack.start_worker()
    ready = time.monotonic() - killed
    stack.expect_answers({c: 1 for c in chats}, TARGET)
    return ready, _last_answer(stack, chats) - killed


def redis_restart(stack: Stack, chats: list[int]) -> tuple[float, bool]:
    assert stack.worker is not None and stack.worker.process is not None
    pid = stack.worker.process.pid
    half = len(chats) // 2
    updates = {c: text_update(c, "Apa khabar? Boleh bantu saya?") for c in chats}
    for chat in chats[:half]:
        assert stack.post(updates[chat]) == 200
    stack.redis.kill()
    for chat in chats[half:]:
        assert stack.post(updates[chat]) == 503
    time.sleep(2.0)
    stack.redis.start()
    restarted = time.monotonic()
    for chat in chats[half:]:  # the platform's redeliveries
        assert stack.post(updates[chat]) == 200
    stack.expect_answers({c: 1 for c in chats}, TARGET)
    alive = stack.worker.process.poll() is None and stack.worker.process.pid == pid
    return _last_answer(stack, chats) - restarted, alive


def _last_answer(stack: Stack, chats: list[int]) -> float:
    """When (time.monotonic, as the stand-in records it) the last of the chats was answered."""
    return max(call.at for chat in chats for call in sent_to(stack.telegram, chat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sealion-recovery-"))
    telegram = TelegramStandIn(TELEGRAM_TOKEN).start()
    checkpoint = build_tiny_qwen3_vl(root / "model", generation={"min_new_tokens": 4000})
    stack = Stack(root, telegram, checkpoint)  # the default lease and reconciler settings
    try:
        stack.start_worker()
        first = 10_000_000
        kill_ready, kill_last = worker_kill(stack, list(range(first, first + args.chats)))
        restart_last, alive = redis_restart(
            stack, list(range(first + 100, first + 100 + args.chats)))
    finally:
        stack.close()
        telegram.stop()
    print(f"chats per case: {args.chats} (each answered exactly once)")
    print(f"worker SIGKILL -> new worker ready:      {kill_ready:6.1f} s")
    print(f"worker SIGKILL -> last chat answered:    {kill_last:6.1f} s")
    print(f"new worker ready -> last chat answered:  {kill_last - kill_ready:6.1f} s")
    print(f"Redis restart  -> last chat answered:    {restart_last:6.1f} s")
    print(f"worker process survived the Redis restart: {'yes' if alive else 'NO'}")


if __name__ == "__main__":
    main()
