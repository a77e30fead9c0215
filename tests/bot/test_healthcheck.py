"""The worker containers' health check on a real Redis: alive only with a fresh heartbeat of a
worker on this host, and the command compose runs (`sealion-bot healthcheck`) says so through
its exit status."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import redis

from storage.conversations import WorkerRegistry
from storage.keys import KeyBuilder


@pytest.fixture()
def client(redis_server):
    c = redis.Redis.from_url(redis_server.url[:-2] + "/13")
    yield c
    c.flushdb()
    c.close()


def test_alive_only_with_a_fresh_beat_of_this_host(client):
    registry = WorkerRegistry(client)
    assert not registry.alive_on("box-a")
    registry.beat("box-b:41")
    assert not registry.alive_on("box-a")
    client.zadd(KeyBuilder().workers(), {"box-a:7": time.time() - 120})  # a stale beat
    assert not registry.alive_on("box-a")
    registry.beat("box-a:7")
    assert registry.alive_on("box-a")
    assert not registry.alive_on("box")  # a host whose name starts the same is another host


@pytest.mark.e2e
def test_the_command_exits_by_the_heartbeat(client, redis_server):
    env = {**os.environ, "REDIS_URL": redis_server.url[:-2] + "/13"}
    command = [sys.executable, "-m", "bot.cli", "healthcheck"]
    assert subprocess.run(command, env=env, timeout=60).returncode == 1
    WorkerRegistry(client).beat(f"{socket.gethostname()}:{os.getpid()}")
    assert subprocess.run(command, env=env, timeout=60).returncode == 0
    env["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    assert subprocess.run(command, env=env, timeout=60).returncode == 1
