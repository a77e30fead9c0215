"""`sealion-bot dev`'s embedded Redis and DATA_DIR (#18, item 8).

A real `sealion-bot dev` is started once, as a developer would on a fresh machine (nothing
configured, the shell's umask 022, a DATA_DIR an older version left 0755), and then probed: its
Redis refuses clients without the password and knows no CONFIG, listens on loopback only, and
everything under DATA_DIR (the SQLite log, the Redis AOF and password, the URL file for `chat`,
beat's schedule) is 0700/0600. The same fences are checked on `EmbeddedRedis` and the
conversation log used directly, as the test suite and the workers use them.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from bot.cli.embedded_redis import EmbeddedRedis, free_port
from tests.bot.test_startup import bare_env
from tests.helpers.conversation_log import key_of, sqlite_log, turn

#: The shell umask of most machines: without the fix, files come out 0644 and folders 0755.
SHELL_UMASK = 0o022


@dataclass
class DevRun:
    home: Path  # the working directory; DATA_DIR is home/.sealion (the default)
    port: int
    log_path: Path

    @property
    def data_dir(self) -> Path:
        return self.home / ".sealion"

    @property
    def redis_url(self) -> str:
        return (self.data_dir / "dev-redis-url").read_text().strip()

    @property
    def redis_port(self) -> int:
        port = urlsplit(self.redis_url).port
        assert port is not None
        return port

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    home = tmp_path_factory.mktemp("dev-home")
    # What an older version left behind: a DATA_DIR others may enter.
    (home / ".sealion").mkdir(mode=0o755)
    (home / ".sealion").chmod(0o755)
    run = DevRun(home, free_port(), home / "dev.out")
    with open(run.log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "dev", "--port", str(run.port),
             "--concurrency", "2"],
            cwd=home, env=bare_env(home), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, umask=SHELL_UMASK)
    try:
        deadline = time.monotonic() + 180
        healthy = False
        while time.monotonic() < deadline and process.poll() is None and not healthy:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{run.port}/healthz",
                                    timeout=5).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
        assert healthy, run.output()[-3000:]
        # The worker's beat writes its schedule into DATA_DIR once it runs.
        while time.monotonic() < deadline and not list(run.data_dir.glob("celerybeat-schedule*")):
            time.sleep(0.5)
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def listening_addresses(port: int) -> list[str]:
    """The local addresses (kernel hex form) of the TCP sockets listening on `port`."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():  # no IPv6 on this machine
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def modes(root: Path) -> dict[str, int]:
    """Every path under `root` (root itself as "."), with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


# --- the dev Redis -----------------------------------------------------------------------------

def test_dev_redis_refuses_a_client_without_the_password(dev):
    anonymous = redis.Redis(host="127.0.0.1", port=dev.redis_port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("planted", "by another local user")
    anonymous.close()
    # The URL dev hands its own processes (and `sealion-bot chat`) carries the password.
    owner = redis.Redis.from_url(dev.redis_url, socket_timeout=5)
    assert owner.ping() is True
    assert owner.get("planted") is None
    owner.close()


def test_dev_redis_knows_no_config_command(dev):
    client = redis.Redis.from_url(dev.redis_url, socket_timeout=5)
    # CONFIG SET dir + dbfilename + SAVE writes a file anywhere the server may write.
    for command in (("CONFIG", "SET", "dir", str(dev.home)), ("CONFIG", "GET", "dir"),
                    ("MODULE", "LIST"), ("DEBUG", "SLEEP", "0")):
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command(*command)
    client.close()


def test_dev_redis_listens_on_loopback_only(dev):
    # 0100007F is 127.0.0.1 as /proc/net/tcp writes it; no 0.0.0.0, no IPv6 socket.
    assert listening_addresses(dev.redis_port) == ["0100007F"]


def test_dev_data_dir_is_the_operators_alone(dev):
    found = modes(dev.data_dir)
    wide = {name: oct(mode) for name, mode in found.items()
            if (stat.S_ISDIR((dev.data_dir / name).lstat().st_mode) and mode != 0o700)
            or (not stat.S_ISDIR((dev.data_dir / name).lstat().st_mode) and mode != 0o600)}
    assert not wide, f"folders must be 0700 and files 0600 under DATA_DIR: {wide}"
    # What a start leaves there: the log, the Redis data and password, chat's URL file, beat's.
    for expected in ("log.db", "redis", "redis/appendonly.aof", "redis/password",
                     "dev-redis-url"):
        assert expected in found, sorted(found)
    assert any(name.startswith("celerybeat-schedule") for name in found), sorted(found)


def test_dev_says_its_redis_is_for_development_and_never_prints_the_password(dev):
    output = dev.output()
    redis_line = next(line for line in output.splitlines() if line.strip().startswith("redis "))
    assert "development only" in redis_line and "REDIS_URL" in redis_line, redis_line
    assert f"127.0.0.1:{dev.redis_port}" in redis_line
    password = (dev.data_dir / "redis" / "password").read_text().strip()
    assert len(password) >= 32
    assert password not in output


# --- the same fences, used directly ------------------------------------------------------------

@contextmanager
def shell_umask() -> Iterator[None]:
    previous = os.umask(SHELL_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.integration
def test_embedded_redis_keeps_one_private_password_across_restarts(tmp_path):
    folder = tmp_path / "redis"
    with shell_umask():
        server = EmbeddedRedis(folder, persist=True, fsync_always=True).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("history", "kept")
        client.close()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()
    finally:
        server.stop()
    # Restarted on its AOF: the same password, so the data and the clients still agree.
    with shell_umask():
        again = EmbeddedRedis(folder, port=server.port, persist=True).start()
    try:
        assert again.url == server.url
        client = redis.Redis.from_url(again.url)
        assert client.get("history") == b"kept"
        client.close()
    finally:
        again.stop()
    found = modes(folder)
    assert found["."] == 0o700
    assert found["password"] == 0o600 and found["appendonly.aof"] == 0o600, found


def test_the_sqlite_conversation_log_and_its_wal_are_private(tmp_path):
    with shell_umask():
        log = sqlite_log(tmp_path / "data" / "log.db")
        try:
            assert turn(log, key_of(user="5501"), "my address is 12 Orchard Road", "Noted.")
            # While a connection is open, SQLite keeps the -wal and -shm files beside the log.
            with log.engine.connect():
                found = modes(tmp_path / "data")
        finally:
            log.close()
    assert found["."] == 0o700
    assert {"log.db", "log.db-wal", "log.db-shm"} <= set(found), found
    assert {name: oct(mode) for name, mode in found.items() if name != "."} == {
        name: oct(0o600) for name in found if name != "."}
