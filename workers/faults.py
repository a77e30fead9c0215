"""Fault injection for the fault-tolerance tests only (setting FAULT_INJECT, refused in
production): `"step"` or `"step:count"` makes the named turn step raise `InjectedFault` on its
first `count` calls (default 1) in each worker process.

Steps: prepare (planning the turn), fetch (a photo download), generate (the engine call), send
(the platform call), record (the history and log write).
"""

from __future__ import annotations

import threading

STEPS = ("prepare", "fetch", "generate", "send", "record")


class InjectedFault(RuntimeError):
    """An exception nobody expects, raised on purpose by a test."""


class FaultInjector:
    def __init__(self, spec: str | None) -> None:
        self._step, self._left = None, 0
        if spec:
            step, _, count = spec.partition(":")
            if step not in STEPS:
                raise ValueError(f"FAULT_INJECT: unknown step {step!r}; one of {STEPS}")
            self._step, self._left = step, int(count or 1)
        self._lock = threading.Lock()

    def check(self, step: str) -> None:
        if self._step != step:
            return
        with self._lock:
            if self._left <= 0:
                return
            self._left -= 1
        raise InjectedFault(f"fault injected in step {step}")
