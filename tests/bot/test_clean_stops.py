"""Clean stops, with real processes: SIGTERM and SIGINT to `dev`, `api`, `worker`, `poll` and
`chat` end that process and every process it started within 30 s, and SIGKILL to `dev`, `chat`,
`worker` and `api --workers N` takes their children along (a parent-death signal).

Each command runs for real, its whole process tree is read from /proc before the signal (pids
with their start times, so a recycled pid is never mistaken for a survivor), and after the
signal every one of them must be gone within the 30 s. The model is the OpenAI-compatible
stand-in (no model loads), the platform the Telegram stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli.embedded_redis import free_port
from tests.conftest import TELEGRAM_TOKEN, new_chat_id
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.images import image_bytes
from tests.helpers.processes import Proc, alive, command_line, process_tree
from tests.helpers.updates import photo_update
from tests.helpers.waiting import wait_replies, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: What the issue asks: the process and everything it started, gone within this many seconds.
STOP_WITHIN = 30.0
#: The suite's Redis database for the worker and the poller here (flushed by nobody else).
DATABASE = 8
SIGNALS = [signal.SIGTERM, signal.SIGINT]


@pytest.fixture(scope="module")
def model() -> Iterator[ChatStandIn]:
    stand_in = ChatStandIn().start()
    yield stand_in
    stand_in.stop()
    assert stand_in.spec_errors == [], stand_in.spec_errors


def _env(tmp_path: Path, model: ChatStandIn, **extra: str) -> dict[str, str]:
    """A machine with nothing configured but the model stand-in (and `extra`), offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "OPENAI_",
                                "ADMIN_", "REDIS_", "DATABASE_", "WEB_CHAT", "LOG_", "ASR_",
                                "GUARD_", "STOP_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT), ENVIRONMENT="test", LOG_FORMAT="text",
               DATA_DIR=str(tmp_path / "data"), DATABASE_URL=f"sqlite:///{tmp_path}/log.db",
               MODEL_BACKEND="openai", OPENAI_BASE_URL=model.v1, OPENAI_MODEL=model.model,
               ASR_BACKEND="off", **extra)
    return env


class Command:
    """`python -m bot.cli ARGS` in its own session, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path,
                 stdin: int | None = subprocess.DEVNULL) -> None:
        self.log_path = cwd / f"{args[0]}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env, stdin=stdin,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.tree: set[Proc] = set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def snapshot(self) -> set[Proc]:
        """The process tree now (kept for the cleanup)."""
        self.tree |= process_tree(self.process.pid)
        return process_tree(self.process.pid)

    def stop(self, sig: int) -> float:
        """Send `sig` to the command's process alone, as a process manager or `kill` does;
        assert that it and its whole tree (read just before) are gone within STOP_WITHIN.
        Returns the seconds the tree took to go."""
        tree = self.snapshot()
        told = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{sig.name}: still running after {STOP_WITHIN}s; the log "
                                 f"ends:\n{self.log()[-3000:]}") from None
        while alive(tree) and time.monotonic() - told < STOP_WITHIN:
            time.sleep(0.1)
        left = alive(tree)
        assert not left, (f"{sig.name}: alive {STOP_WITHIN}s later: "
                          f"{[command_line(pid) for pid, _ in left]}; the log ends:\n"
                          f"{self.log()[-3000:]}")
        return time.monotonic() - told

    def cleanup(self) -> None:
        """Whatever a failed test left: SIGKILL, so that nothing leaks into the next test."""
        if self.process.poll() is None:
            self.tree |= process_tree(self.process.pid)
        for pid, _ in alive(self.tree):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.wait(10)


@pytest.fixture()
def run(tmp_path) -> Iterator[Callable[..., Command]]:
    started: list[Command] = []

    def start(args: list[str], env: dict[str, str], **kw) -> Command:
        started.append(Command(args, env, tmp_path, **kw))
        return started[-1]

    yield start
    for command in started:
        command.cleanup()


def _names(tree: set[Proc]) -> list[str]:
    return [command_line(pid) for pid, _ in tree]


# --- dev ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [*SIGNALS, signal.SIGKILL], ids=lambda s: s.name)
def test_dev_and_everything_it_started_stop(sig, run, tmp_path, model, telegram):
    """dev with its embedded Redis, its worker (and celery beat in it), Telegram polling, and a
    photo decoded, so that the worker's decode processes run too."""
    port = free_port()
    env = _env(tmp_path, model, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
               TELEGRAM_API_BASE_URL=telegram.base_url, TELEGRAM_POLLING="true",
               TELEGRAM_POLLING_TIMEOUT_SECONDS="2")
    dev = run(["dev", "--port", str(port), "--concurrency", "2"], env)
    telegram.add_file("photo-large", image_bytes(320, 240, fmt="JPEG"),
                      file_path="photos/stops.jpg")
    chat = new_chat_id()
    telegram.add_update(photo_update(chat, caption="Apa ini?"))
    wait_replies(telegram, chat, 1, timeout=120)
    tree = dev.snapshot()
    names = _names(tree)
    assert any("redis-server" in n for n in names), names
    assert sum("bot.cli worker" in n for n in names) == 2, names  # the worker and its beat
    assert any("forkserver" in n for n in names), names  # the decode processes' server
    took = dev.stop(sig)
    if sig is not signal.SIGKILL:  # stopped in order: its files tidied, nothing failed
        assert not (tmp_path / "data" / "dev-redis-url").exists()
        assert "Traceback" not in dev.log(), dev.log()[-3000:]
    print(f"\ndev, {len(tree)} processes, {sig.name}: all gone in {took:.1f}s")


# --- api ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("processes, sig", [(1, signal.SIGTERM), (1, signal.SIGINT),
                                            (3, signal.SIGTERM), (3, signal.SIGINT),
                                            (3, signal.SIGKILL)],
                         ids=["1-SIGTERM", "1-SIGINT", "3-SIGTERM", "3-SIGINT", "3-SIGKILL"])
def test_api_and_its_processes_stop(processes, sig, run, tmp_path, model, redis_server):
    port = free_port()
    env = _env(tmp_path, model, REDIS_URL=f"{redis_server.url[:-2]}/{DATABASE}")
    api = run(["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(processes)],
              env)

    def serving() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(serving, 180, "the API")  # three processes importing the app on a busy 2-core box
    if processes > 1:  # every one of uvicorn's processes up, not only the first
        wait_until(lambda: sum("multiprocessing" in n for n in _names(api.snapshot()))
                   >= processes, 60, f"{processes} API processes")
    tree = api.snapshot()
    assert len(tree) >= processes
    took = api.stop(sig)
    print(f"\napi --workers {processes}, {len(tree)} processes, {sig.name}: all gone in "
          f"{took:.1f}s")


# --- worker -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [*SIGNALS, signal.SIGKILL], ids=lambda s: s.name)
def test_a_worker_and_its_beat_stop(sig, run, tmp_path, model, redis_server):
    env = _env(tmp_path, model, REDIS_URL=f"{redis_server.url[:-2]}/{DATABASE}")
    worker = run(["worker", "--concurrency", "2", "--beat"], env)
    wait_until(lambda: "model ready" in worker.log(), 90, "the worker")
    wait_until(lambda: sum("bot.cli worker" in n for n in _names(worker.snapshot())) == 2, 30,
               "celery beat")
    took = worker.stop(sig)
    if sig is not signal.SIGKILL:
        assert "Traceback" not in worker.log(), worker.log()[-3000:]
    print(f"\nworker, {sig.name}: all gone in {took:.1f}s")


# --- poll ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_poll_stops_in_the_middle_of_a_long_poll(sig, run, tmp_path, model, redis_server,
                                                  telegram):
    """getUpdates held for 50 s (TELEGRAM_POLLING_TIMEOUT_SECONDS' default): the signal does
    not wait for it to end."""
    env = _env(tmp_path, model, REDIS_URL=f"{redis_server.url[:-2]}/{DATABASE}",
               TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
               TELEGRAM_POLLING_TIMEOUT_SECONDS="50")
    held = telegram.max_poll_wait
    telegram.max_poll_wait = 50.0
    try:
        poll = run(["poll"], env)
        wait_until(lambda: "polling for @" in poll.log(), 60, "the poller")
        wait_until(lambda: telegram.in_flight("getUpdates") >= 1, 10, "a long poll")
        time.sleep(0.5)  # well inside it
        took = poll.stop(sig)
    finally:
        telegram.max_poll_wait = held
    assert took < 10, took
    assert poll.process.returncode == 0 and "polling stopped" in poll.log(), poll.log()
    assert "Traceback" not in poll.log(), poll.log()


# --- chat ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [*SIGNALS, signal.SIGKILL], ids=lambda s: s.name)
def test_chat_and_the_worker_and_redis_it_started_stop(sig, run, tmp_path, model):
    """`chat` with no Redis to use (REDIS_URL answers nothing): it starts its own Redis and a
    worker, answers a line from its piped stdin, then is signalled while it waits for more."""
    env = _env(tmp_path, model, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    chat = run(["chat", "--conversation", "stops", "--timeout", "60"], env,
               stdin=subprocess.PIPE)
    assert chat.process.stdin is not None
    chat.process.stdin.write(b"Halo, apa kabar?\n")
    chat.process.stdin.flush()
    wait_until(lambda: "sealion> " in chat.log(), 120, "the chat's answer")
    tree = chat.snapshot()
    names = _names(tree)
    assert any("redis-server" in n for n in names) and any("bot.cli worker" in n
                                                           for n in names), names
    took = chat.stop(sig)
    print(f"\nchat, {len(tree)} processes, {sig.name}: all gone in {took:.1f}s")
