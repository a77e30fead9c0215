"""What each worker says about the models it hosts, for /readyz and the CLI (one Redis hash).

    sealion:model   worker name -> {"hosts": {kind: {"state", "reason", "details"}}, "at"}

`kind` is "chat", "speech" or "guard"; `state` is "loading", "ready", "failed" or
"unavailable" (`workers.models.host.HostHealth.as_json`). A worker writes its whole entry at
once (one HSET) when a host's state or reason changes, and otherwise at a low rate
(`workers.lifecycle`): nothing per turn. Only workers still alive (heartbeats in
`WorkerRegistry`) count: a dead worker's word is ignored, and `leave` removes it on a clean
stop. An entry of the earlier form (one model: {"state", "backend", "model", "reason"}) reads
as its chat host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis

from storage.keys import KeyBuilder

#: A worker's hosts: kind -> {"state", "reason", "details"}.
Hosts = dict[str, dict[str, Any]]


class ModelStatusBoard:
    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._key = (keys or KeyBuilder()).model_status()

    def publish(self, worker: str, hosts: Mapping[str, Mapping[str, Any]]) -> None:
        """Record the health of every host of `worker` (one command)."""
        self._redis.hset(self._key, worker, json.dumps(
            {"hosts": {kind: dict(health) for kind, health in hosts.items()}, "at": time.time()}))

    def leave(self, worker: str) -> None:
        self._redis.hdel(self._key, worker)

    def of(self, workers: list[str]) -> dict[str, Hosts]:
        """The hosts of these workers (the live ones), by worker name; workers that host no
        model (or have not said yet) are absent."""
        if not workers:
            return {}
        values = self._redis.hmget(self._key, workers)
        found: dict[str, Hosts] = {}
        for name, value in zip(workers, values, strict=True):
            if value is None:
                continue
            try:
                report = json.loads(value)
            except ValueError:
                continue
            hosts = _hosts(report)
            if hosts:
                found[name] = hosts
        return found

    def of_kind(self, workers: list[str], kind: str) -> dict[str, dict[str, Any]]:
        """The `kind` host ("chat") of each of these workers that has one, by worker name."""
        return {name: hosts[kind] for name, hosts in self.of(workers).items() if kind in hosts}


def _hosts(report: Any) -> Hosts:
    if not isinstance(report, dict):
        return {}
    hosts = report.get("hosts")
    if isinstance(hosts, dict):
        return {str(k): v for k, v in hosts.items() if isinstance(v, dict)}
    if "state" in report:  # the earlier form: one model, the chat model
        return {"chat": {"state": report["state"], "reason": report.get("reason", ""),
                         "details": {"backend": report.get("backend"),
                                     "model": report.get("model")}}}
    return {}
