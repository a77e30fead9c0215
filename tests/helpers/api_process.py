"""`sealion-bot api` as a real process on a free loopback port, for tests of the HTTP boundary
that need a real server: memory (RSS) under hostile bodies, uvicorn's proxy headers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers.processes import stop_process

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiProcess:
    """`python -m bot.cli.main api --host 127.0.0.1 --port P` with `env` (and nothing from .env)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> ApiProcess:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "ADMIN_", "REDIS_"))}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "api", "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=self.log_path.parent, env={**base, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "text",
                                           **self.env},
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited: {self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the API did not answer in {timeout} s: {self.log()}")

    def peak_rss_kib(self) -> int:
        """The process's peak resident memory so far (VmHWM), in KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self._log.close()
