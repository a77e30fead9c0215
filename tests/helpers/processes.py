"""Stopping the processes a test started: politely first, then for sure."""

from __future__ import annotations

import os
import subprocess


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, up to `timeout` seconds to exit, then SIGKILL; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- process trees, read from /proc (Linux) ---------------------------------------------------
#: A process, named so that a recycled pid is never taken for it: (pid, start time in ticks).
Proc = tuple[int, int]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of `pid` from /proc/PID/stat; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def process_tree(root: int) -> set[Proc]:
    """`root` and every process below it now (children, their children, ...)."""
    parents: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents.setdefault(stat[1], []).append((int(entry), stat[2]))
    found: set[Proc] = set()
    own = _stat(root)
    todo = [(root, own[2])] if own is not None else []
    while todo:
        proc = todo.pop()
        if proc not in found:
            found.add(proc)
            todo += parents.get(proc[0], [])
    return found


def alive(procs: set[Proc]) -> set[Proc]:
    """Those of `procs` still running (a zombie, dead and not yet reaped, is not)."""
    living = set()
    for pid, started in procs:
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[0] not in ("Z", "X"):
            living.add((pid, started))
    return living


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
