"""What each worker says about its model, for /readyz and the startup summary (Redis hash).

    sealion:model   worker name -> {"state": "loading"|"ready"|"failed", "backend", "model",
                                    "reason", "at"}

Only workers still alive (heartbeats in `WorkerRegistry`) count: a dead worker's word is
ignored, and `leave` removes it on a clean stop.
"""

from __future__ import annotations

import json
import time

import redis

from storage.keys import KeyBuilder


class ModelStatusBoard:
    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._key = (keys or KeyBuilder()).model_status()

    def report(self, worker: str, state: str, *, backend: str, model: str,
               reason: str = "") -> None:
        self._redis.hset(self._key, worker, json.dumps(
            {"state": state, "backend": backend, "model": model, "reason": reason,
             "at": time.time()}))

    def leave(self, worker: str) -> None:
        self._redis.hdel(self._key, worker)

    def of(self, workers: list[str]) -> dict[str, dict]:
        """The reports of these workers (the live ones), by worker name."""
        if not workers:
            return {}
        values = self._redis.hmget(self._key, workers)
        return {name: json.loads(value) for name, value in zip(workers, values, strict=True)
                if value is not None}
