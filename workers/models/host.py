"""The contract of every model a worker hosts: chat, speech and guard models alike.

A host is built cheaply: its constructor records settings, loads nothing and imports nothing
heavy, so the web process, a torch-less worker or a test can build one. Then:

    load()       the heavy work, once: the weights onto the device, or (a server's host) a check
                 that the server answers and serves the model. Idempotent and thread-safe; the
                 family's error when it cannot serve. Requests load on first use.
    warm_up()    `load()` now, at a worker's start (`workers.lifecycle.WorkerLife`, one loop over
                 the hosts); never raises: the outcome is in `health()`.
    health()     cheap, never raises: a `HostHealth` (state, reason, details such as the device
                 and the batches), which every worker publishes and /readyz shows.

A host's state (`HostState`):

    loading ──load()──▶ ready
       │                  ▲ │  (a server's host: its next answer, or a new check)
       │                  │ ▼
       ├──────────▶ unavailable   cannot serve now, may later: a server that does not answer
       │                          (or serves something else); asked again every
       │                          `SERVER_RETRY_SECONDS` by the worker
       └──────────▶ failed        cannot load in this process: a checkpoint that did not load
                                  will not load later. Requests fail at once with the reason
                                  (`load()` raises it) instead of trying again each time.

In-process hosts batch through the one batcher (`workers.models.batching.Batcher`): the
worker's threads each ask for one answer, and the batcher's thread serves them a batch at a
time. Servers batch by themselves, so their hosts send each request at once.

`ModelHosts` is a process's set of hosts, built by the composition root
(`bot.composition.Services.models`): the chat model, and the speech and guard models when
they are on.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from workers.models.chat.base import BaseEngine
    from workers.models.guard.base import BaseGuard
    from workers.models.speech.base import BaseRecogniser

__all__ = ["HostHealth", "HostKind", "HostState", "ModelHost", "ModelHosts", "describe"]


class HostKind(StrEnum):
    CHAT = "chat"
    SPEECH = "speech"
    GUARD = "guard"
    EMBEDDING = "embedding"


class HostState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class HostHealth:
    """What a host says of itself. `details` are small JSON values (the backend, the model,
    the device, batch figures); a reason and the details may name a server by its URL, which
    whoever publishes them redacts."""

    state: HostState
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def serving(self) -> bool:
        return self.state is HostState.READY

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "reason": self.reason, "details": dict(self.details)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostHealth:
        return cls(HostState(str(data.get("state", "loading"))), str(data.get("reason") or ""),
                   dict(data.get("details") or {}))


def describe(exc: BaseException, limit: int = 300) -> str:
    """An error on one line: its type and the first line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


#: One lock per host for `load()`, made on first use (subclasses need not call a constructor).
_LOCKS_LOCK = threading.Lock()


class ModelHost(ABC):
    """A model a worker hosts (see the module's docstring for the contract).

    A subclass implements `_load()` (the heavy work, raising its family's error), names its
    `kind`, its backend (`name`) and the error `load()` raises once it has failed
    (`unavailable_error`), and adds what `health()` shows in `details()`. A host served by
    another process sets `remote`: its load failures are `unavailable`, and it reports each
    answer and each lost server (`_answered`, `_lost`), so its health follows the server.
    """

    kind: ClassVar[HostKind]
    #: The backend ("transformers", "openai", "keywords").
    name: str = "host"
    #: Served by another process: a failure to reach it may pass.
    remote: ClassVar[bool] = False
    #: What `load()` raises, with the reason, once the host has failed.
    unavailable_error: ClassVar[type[Exception]] = RuntimeError
    #: (state, reason), replaced as a whole (one assignment), never changed in place.
    _status: tuple[HostState, str] = (HostState.LOADING, "")

    # --- the contract --------------------------------------------------------------------------
    def load(self) -> None:
        """Load once; idempotent and thread-safe. Raises the family's error: the load's own,
        or `unavailable_error` with the reason once the host has failed."""
        if self._status[0] is not HostState.READY:
            self._check(again=False)

    def warm_up(self, explain: Callable[[BaseException], str] | None = None) -> HostHealth:
        """`load()` now; never raises. A server's host asks its server again even when it is
        ready (so its health follows a server that went away while idle); a host that failed
        is not loaded again. A failure's reason is `explain(error)` when given (the chat
        model's paragraph, `workers.models.failure`), else the error on one line."""
        if self._status[0] is not HostState.FAILED:
            try:
                self._check(again=self.remote)
            except Exception as exc:
                if explain is not None:
                    try:
                        self._status = (self._status[0], explain(exc))
                    except Exception:  # the plain reason stays
                        pass
        return self.health()

    def health(self) -> HostHealth:
        """Cheap, never raises: the state, the reason, and the backend with `details()`."""
        state, reason = self._status
        details: dict[str, Any] = {"backend": self.name}
        try:
            details.update(self.details())
        except Exception as exc:  # health never raises
            details["details_error"] = type(exc).__name__
        return HostHealth(state, reason, details)

    # --- for subclasses ------------------------------------------------------------------------
    @abstractmethod
    def _load(self) -> None:
        """The heavy work of `load()` (called once at a time); raises the family's error."""

    def details(self) -> dict[str, Any]:
        """Small JSON values for `health()`: the model, the device, batch figures; cheap."""
        return {}

    def failure_state(self, exc: BaseException) -> HostState:
        """What a load failure makes the host: `unavailable` for a server, else `failed`."""
        return HostState.UNAVAILABLE if self.remote else HostState.FAILED

    def _answered(self) -> None:
        """A server's host got an answer: it serves again."""
        if self._status[0] is not HostState.READY:
            self._status = (HostState.READY, "")

    def _lost(self, exc: BaseException) -> None:
        """A server's host got no answer at all, or a refusal no request will get past (the
        credentials): unavailable until it answers again."""
        self._status = (HostState.UNAVAILABLE, describe(exc))

    def _check(self, again: bool) -> None:
        with self._load_lock():
            state, reason = self._status
            if state is HostState.READY and not again:
                return
            if state is HostState.FAILED:
                raise self.unavailable_error(reason)
            try:
                self._load()
            except Exception as exc:
                self._status = (self.failure_state(exc), describe(exc))
                raise
            self._status = (HostState.READY, "")

    def _load_lock(self) -> threading.Lock:
        lock = self.__dict__.get("_host_load_lock")
        if lock is None:
            with _LOCKS_LOCK:
                lock = self.__dict__.setdefault("_host_load_lock", threading.Lock())
        return lock


@dataclass
class ModelHosts:
    """The hosts of one process: the chat model, and the speech and guard models when they
    are on (ASR_BACKEND, GUARD_BACKEND). Built by the composition root; nothing is loaded until
    a host is asked (or warmed up)."""

    chat: BaseEngine
    speech: BaseRecogniser | None = None
    guard: BaseGuard | None = None

    def all(self) -> list[ModelHost]:
        """The hosts that are on, in the order a worker warms them up (the chat model first:
        it decides whether the worker can answer at all)."""
        return [h for h in (self.chat, self.guard, self.speech) if h is not None]

    def health(self) -> dict[HostKind, HostHealth]:
        return {host.kind: host.health() for host in self.all()}


def quiet_transformers() -> None:
    """Called by the in-process hosts once they import transformers: no progress bars
    ("Loading weights ...") on stderr, where they break the JSON log lines of a worker and
    clutter a CLI command's output; the hosts log their own one line when loaded."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def missing_checkpoint(model: str) -> str | None:
    """Why the checkpoint folder `model` names cannot be loaded (it is not there, or holds no
    config.json); None for a hub id or a folder that looks whole. The in-process hosts ask
    before they import torch, so a wrong path is said at once and costs nothing."""
    if not model.startswith(("/", ".", "~")):
        return None
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        return None
    return f"no checkpoint folder at {folder} (no config.json)"
