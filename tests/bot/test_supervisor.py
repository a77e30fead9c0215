"""`sealion-bot dev` starts its worker again when it dies (a real process, killed for real)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from bot.cli.supervisor import WorkerSupervisor
from tests.helpers.waiting import wait_until


@pytest.mark.e2e
def test_a_killed_worker_is_started_again_and_stop_ends_it():
    supervisor = WorkerSupervisor([sys.executable, "-c", "import time; time.sleep(60)"],
                                  dict(os.environ), max_backoff=1.0, grace=5.0).start()
    try:
        first = supervisor.process
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)  # as the OOM killer would
        wait_until(lambda: supervisor.process is not first and supervisor.process.poll() is None,
                   15, "the worker started again")
        assert supervisor.restarts == 1
    finally:
        supervisor.stop()
    assert supervisor.process is not None and supervisor.process.poll() is not None
