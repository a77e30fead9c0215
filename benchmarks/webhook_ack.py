"""Webhook acknowledgement latency and throughput, on loopback, with everything real.

Starts a private Redis, the Telegram stand-in, a worker on a tiny checkpoint and the API
(`sealion-bot api`, uvicorn, one process), then posts text updates from many simulated chats and
times each 200. `GET /healthz` is timed the same way in the same run as the floor: the ratio
says what verification, dedupe and enqueueing cost on top of answering HTTP at all.

    python benchmarks/webhook_ack.py [--requests 2000] [--concurrency 1 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.cli.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from tests.helpers.checkpoints import build_tiny_qwen3_vl  # noqa: E402
from tests.helpers.services import WorkerProcess  # noqa: E402
from tests.helpers.telegram_api import TelegramStandIn  # noqa: E402

TOKEN = "7000002:benchmark-token"
SECRET = "benchmark-secret-0123456789"


def update(update_id: int, chat_id: int) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": "Apa khabar hari ini?",
        "from": {"id": chat_id, "is_bot": False, "first_name": "B", "language_code": "ms"},
        "chat": {"id": chat_id, "type": "private", "first_name": "B"}}}


async def run(base: str, n: int, concurrency: int, first_id: int, kind: str) -> list[float]:
    latencies: list[float] = []
    ids = iter(range(first_id, first_id + n))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def one_client() -> None:
            for uid in ids:
                start = time.perf_counter()
                if kind == "webhook":
                    r = await client.post("/webhooks/telegram", json=update(uid, 10_000 + uid),
                                          headers=headers)
                else:
                    r = await client.get("/healthz")
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies


def summary(latencies: list[float], wall: float) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return p50, p99, len(latencies) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sealion-bench-"))
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    telegram = TelegramStandIn(TOKEN).start()
    model = build_tiny_qwen3_vl(tmp / "model", generation={"max_new_tokens": 4})
    env = dict(os.environ, REDIS_URL=redis_server.url, TELEGRAM_BOT_TOKEN=TOKEN,
               TELEGRAM_WEBHOOK_SECRET=SECRET, TELEGRAM_API_BASE_URL=telegram.base_url,
               MODEL_ID=str(model), MAX_NEW_TOKENS="4", LOG_LEVEL="WARNING")
    worker = WorkerProcess(dict(env, LOG_LEVEL="INFO"), tmp / "worker.log").start(
        redis_server.url)
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "bot.cli", "api", "--host", "127.0.0.1",
                            "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        asyncio.run(run(base, 200, 8, 1, "webhook"))  # warm-up
        print(f"{'what':<10}{'conc':>6}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}"
              f"{'p50 / healthz':>16}")
        next_id = 1000
        for concurrency in args.concurrency:
            rows = {}
            for kind in ("healthz", "webhook"):
                start = time.perf_counter()
                lat = asyncio.run(run(base, args.requests, concurrency, next_id, kind))
                rows[kind] = summary(lat, time.perf_counter() - start)
                next_id += args.requests
            for kind, (p50, p99, rps) in rows.items():
                ratio = p50 / rows["healthz"][0]
                print(f"{kind:<10}{concurrency:>6}{p50:>10.2f}{p99:>10.2f}{rps:>10.0f}"
                      f"{ratio:>16.2f}")
        sent = len(telegram.calls_to("sendMessage"))
        print(f"(the worker answered {sent} of the webhooks while the benchmark ran)")
    finally:
        api.terminate()
        api.wait(10)
        worker.stop()
        telegram.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
