"""The suite's three tiers (docs/testing.md), given to every test at collection, and the unit
tier's rule, enforced while its tests run.

- `unit`: no process and no network. Stores on the in-memory twin of Redis
  (`tests/helpers/twins.py`), SQLite files in tmp_path, the app in process (TestClient).
- `integration`: real parts: the suite's redis-server, PostgreSQL, the platform and model
  stand-ins (loopback servers), tiny random-weight models.
- `e2e`: deployments and processes: worker, API and CLI processes, browsers, faults.

A test's tier is its own marker when it has one (a parameter's marks count: the contract test's
real-Redis case), else the heaviest that its path or its fixtures (the whole closure, so a
fixture built on `redis_server` counts as `redis_server`) say, else `unit`.

In a unit test (its fixtures' setup included), connecting a socket other than AF_UNIX, starting
a subprocess or forking fails the test, saying which and how to move it, even when the code
under test catches the error (a caught refusal can leave a library half-imported for the tests
that follow in the process, as `import torch` did). In an integration test,
starting one of the service's own processes (`sealion-bot`, `python -m bot.cli`: a worker, the
API, `dev`...) fails it the same way: that is an end-to-end test.
"""

from __future__ import annotations

import multiprocessing.util
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")

#: Fixtures that start processes or whole deployments.
E2E_FIXTURES = frozenset({
    "deploy", "service", "qwen_service",   # a worker process and the API (tests/conftest.py)
    "api",                                 # an API process (tests/helpers/api_process.py)
    "stack",                               # the fault tests' processes
    "dev", "poller", "chat_app", "console",
})

#: Fixtures of real parts: servers, databases, stand-ins on loopback, tiny models.
INTEGRATION_FIXTURES = frozenset({
    "redis_server", "own_redis", "own_server", "own_client", "real_backend",
    "postgres_url", "postgres_log",
    "telegram_api", "line_api", "whatsapp_api", "transcription_api", "guard_api",
    "server", "servers", "guard_server", "elsewhere",
    "checkpoints", "engine_checkpoints", "whisper_path", "guard_checkpoint", "tiny_guard",
    "qwen", "hub_cache",
})

#: Files whose every test is end to end (relative to tests/).
E2E_FILES = frozenset({
    "admin/test_console_browser.py", "bot/test_clean_stops.py", "bot/test_cli_webhooks.py",
    "test_console_chat.py", "test_telegram_polling.py", "test_web_chat.py",
})


def tier_of(item: pytest.Item, root: Path) -> str:
    own = [m.name for m in item.iter_markers() if m.name in TIERS]
    if own:
        return max(own, key=TIERS.index)
    path = Path(str(item.path)).relative_to(root).as_posix()
    names = set(getattr(item, "fixturenames", ()))
    if (path.startswith(("faults/", "deploy/")) or path in E2E_FILES
            or (path.startswith("test_") and path.endswith("_end_to_end.py"))
            or names & E2E_FIXTURES):
        return "e2e"
    if names & INTEGRATION_FIXTURES:
        return "integration"
    return "unit"


def assign_tiers(items: list[pytest.Item], root: Path) -> None:
    for item in items:
        tier = tier_of(item, root)
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


class UnitTierViolation(AssertionError):
    pass


#: What the unit test now running was refused, by the threads it may own (see `unit_rules`).
_violations: list[str] = []
#: The threads that were there before the unit test began (an earlier test's leftovers).
_earlier_threads: set[int] = set()


def _refuse(what: str) -> UnitTierViolation:
    if threading.get_ident() not in _earlier_threads:
        _violations.append(what)
    return UnitTierViolation(
        f"a unit test {what}: the unit tier runs with no process and no network. Use the "
        f"in-memory twin (tests/helpers/twins.py), or mark the test integration or e2e "
        f"(tests/helpers/tiers.py, docs/testing.md).")


def _is_service(args: object) -> bool:
    words = [str(a) for a in args] if isinstance(args, list | tuple) else str(args).split()
    return any(w.endswith("sealion-bot") or w.startswith("bot.cli") for w in words)


_integration_running = False
_integration_installed = False


@contextmanager
def integration_rules() -> Iterator[None]:
    """While inside: no process of the service itself (those are end-to-end tests). The guard
    is installed once and consults a flag (see `_unit_running` below for why)."""
    global _integration_running, _integration_installed
    if not _integration_installed:
        _integration_installed = True
        execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

        def checked(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
            if _integration_running and _is_service(args):
                raise UnitTierViolation(
                    "an integration test started a process of the service itself "
                    f"({' '.join(map(str, args[:4])) if isinstance(args, list | tuple) else args}): "
                    "mark it e2e (tests/helpers/tiers.py, docs/testing.md).")
            return execute_child(self, args, *rest, **kwargs)

        subprocess.Popen._execute_child = checked  # type: ignore[attr-defined]
    _integration_running = True
    try:
        yield
    finally:
        _integration_running = False


@contextmanager
def tier_rules(item: pytest.Item) -> Iterator[None]:
    """The rules of the item's tier, while its setup or its call runs."""
    if item.get_closest_marker("unit") is not None:
        with unit_rules():
            yield
    elif item.get_closest_marker("e2e") is None:
        with integration_rules():
            yield
    else:
        yield


#: Whether a unit test (its setup or its call) is running now. The guards below are installed
#: once and consult this flag, so that a fixture restoring an attribute it patched (pytest's
#: `monkeypatch` restores what it found, a guard included) can never leave a guard switched on.
_unit_running = False
_installed = False


def _install_guards() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    execute_child, fork = subprocess.Popen._execute_child, os.fork  # type: ignore[attr-defined]
    spawn = multiprocessing.util.spawnv_passfds  # multiprocessing's spawn and forkserver

    def guarded(method):  # type: ignore[no-untyped-def]
        def check(self, address, *args, **kwargs):  # type: ignore[no-untyped-def]
            if _unit_running and self.family != socket.AF_UNIX:
                raise _refuse(f"connected a socket to {address!r}")
            return method(self, address, *args, **kwargs)
        return check

    def no_child(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        if _unit_running:
            raise _refuse(f"started a process ({args if isinstance(args, str) else args[0]!r})")
        return execute_child(self, args, *rest, **kwargs)

    def no_fork() -> int:
        if _unit_running:
            raise _refuse("forked")
        return fork()

    def no_spawn(path, args, passfds):  # type: ignore[no-untyped-def]
        if _unit_running:
            raise _refuse(f"started a process ({path!r}, multiprocessing)")
        return spawn(path, args, passfds)

    socket.socket.connect = guarded(connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded(connect_ex)  # type: ignore[method-assign]
    subprocess.Popen._execute_child = no_child  # type: ignore[attr-defined]
    os.fork = no_fork
    multiprocessing.util.spawnv_passfds = no_spawn


def _stop_metrics_flushers() -> None:
    """Close the metrics objects that earlier tests of this process left flushing (their thread
    writes to their Redis every few seconds): inside a unit test that write would be refused as
    the unit test's own connection. Closed before the rules hold, so their last flush may run."""
    from storage.metrics import close_all

    close_all()


@contextmanager
def unit_rules() -> Iterator[None]:
    """While inside: no socket connects (but AF_UNIX), no subprocess, no fork."""
    global _unit_running
    _install_guards()
    _stop_metrics_flushers()
    _violations.clear()
    _earlier_threads.clear()
    _earlier_threads.update(t.ident for t in threading.enumerate()
                            if t.ident is not None and t is not threading.current_thread())
    _unit_running = True
    try:
        yield
        # Refused, but the error was caught and the test went on (`except Exception` in the
        # code under test, `pytest.raises(Exception)`): a half-imported library, or a test
        # that passed for the wrong reason. It fails here all the same.
        if _violations:
            raise _refuse(f"{_violations[0]}, and the code under test swallowed the error")
    finally:
        _unit_running = False
