"""Fault injection for the fault-tolerance tests only (setting FAULT_INJECT, refused in
production): `"step"` or `"step:count"`, or several of them separated by commas, makes each
named turn step raise `InjectedFault` on its first `count` calls (default 1) in each process.

`"marked"` instead makes a step raise only in turns whose text contains `#fault-<step>`, so
one worker serves a test that fails each step in a turn of its own.

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
        self._left: dict[str, int] = {}
        self._marked = (spec or "").strip() == "marked"
        for item in ("" if self._marked else spec or "").split(","):
            if not item.strip():
                continue
            step, _, count = item.strip().partition(":")
            if step not in STEPS:
                raise ValueError(f"FAULT_INJECT: unknown step {step!r}; one of {STEPS}")
            self._left[step] = int(count or 1)
        self._lock = threading.Lock()

    def check(self, step: str, turn_text: str = "") -> None:
        if self._marked:
            if f"#fault-{step}" in turn_text:
                raise InjectedFault(f"fault injected in step {step}")
            return
        if step not in self._left:
            return
        with self._lock:
            if self._left[step] <= 0:
                return
            self._left[step] -= 1
        raise InjectedFault(f"fault injected in step {step}")
