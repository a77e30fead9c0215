"""What the loopback stand-ins for chat platform APIs (telegram_api, line_api, whatsapp_api) share.

:class:`LoopbackStandIn` provides a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread
(``start``/``stop``, a context manager, ``base_url``), the recorded ``calls`` and ``spec_errors``,
the per-call-name queues of failures and delays (``reset``, ``set_delay``), the inspection
methods (``calls_to``, ``wait_for``, ``in_flight``) and :meth:`~LoopbackStandIn._serve`, which
counts a request in flight, holds its answer for the delay set and then records the call.
:class:`LoopbackHandler` reads request bodies (chunked too) and writes answers.

A subclass supplies its :attr:`~LoopbackStandIn.service` name, :meth:`~LoopbackStandIn._handle`
(routing a request to a call name and answering it, through ``_serve``), and, where they differ
from the defaults, :meth:`~LoopbackStandIn._name` (canonical call names), ``call_field`` (the
attribute of its ``Call`` holding that name) and ``handler`` (its request handler class).
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

R = TypeVar("R")


class LoopbackHandler(BaseHTTPRequestHandler):
    """Hands GET and POST requests to the server's stand-in (``stand_in._handle(self)``)."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.stand_in._connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.stand_in._connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def do_GET(self) -> None:  # noqa: N802
        self.server.stand_in._handle(self)  # type: ignore[attr-defined]

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, body: bytes, ctype: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (killed worker, timeout): the real API would not care either


class LoopbackStandIn:
    """A fake API server on loopback. ``start()`` it, point the client at ``base_url``, then
    inspect ``calls`` and ``spec_errors``."""

    #: Names the server thread ("<service>-stand-in").
    service = "loopback"
    #: The request handler class the server uses.
    handler: type[BaseHTTPRequestHandler] = LoopbackHandler
    #: The attribute of a recorded call that holds its call name.
    call_field = "name"

    def __init__(self) -> None:
        self.base_url = ""
        self.calls: list[Any] = []
        self.spec_errors: list[str] = []
        self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._delays: dict[str, float] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Open client connections, closed by `stop` as a server that dies closes them.
        self._connections: set[socket.socket] = set()

    # ----------------------------------------------------------------- lifecycle
    def start(self, port: int = 0) -> Self:
        """Serve on `port` (0: any free one); a stand-in stopped and started again on its old
        port is a server that went away and came back."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        self._server.daemon_threads = True
        self._server.stand_in = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"{self.service}-stand-in")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, and close the connections clients keep alive (a stopped stand-in is
        a server that went away, not one that still answers on old connections)."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget calls, spec errors, queued failures and delays."""
        with self._cond:
            self.calls.clear()
            self.spec_errors.clear()
            self._failures.clear()
            self._delays.clear()

    # ------------------------------------------------------------- test controls
    def _name(self, name: str) -> str:
        """The canonical call name for ``name`` (as tests may spell it)."""
        return name

    def set_delay(self, name: str, seconds: float) -> None:
        """Hold answers to ``name`` for ``seconds`` after arrival; lowering it (or reset())
        releases requests already held."""
        with self._cond:
            self._delays[self._name(name)] = seconds

    # -------------------------------------------------------------- inspection
    def _called(self, call: Any) -> str:
        return getattr(call, self.call_field)

    def calls_to(self, name: str) -> list[Any]:
        name = self._name(name)
        with self._cond:
            return [c for c in self.calls if self._called(c) == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 30.0) -> list[Any]:
        name = self._name(name)
        with self._cond:
            if self._cond.wait_for(
                    lambda: sum(self._called(c) == name for c in self.calls) >= count, timeout):
                return [c for c in self.calls if self._called(c) == name]
            seen = [f"{self._called(c)}({c.status})" for c in self.calls]
        raise AssertionError(f"expected {count} call(s) to {name} within {timeout}s; "
                             f"calls so far: {seen or 'none'}")

    def in_flight(self, name: str) -> int:
        """How many requests to ``name`` arrived and are not answered yet (e.g. held by a delay);
        calls are only recorded in ``calls`` once answered."""
        with self._cond:
            return self._in_flight[self._name(name)]

    # ------------------------------------------------------------------ serving
    def _handle(self, req: LoopbackHandler) -> None:
        """Route ``req`` to a call name and answer it (through :meth:`_serve`)."""
        raise NotImplementedError

    def _serve(self, name: str, arrived: float, answer: Callable[[], R],
               failed: Callable[[], R], record: Callable[[R], Any]) -> R:
        """Count the request to ``name`` in flight while ``answer()`` computes its answer
        (``failed()`` and a spec error if that raises: a bug here must fail the test, not hang
        the client), hold it until ``arrived`` plus the delay set for ``name``, then append
        ``record(answer)`` to ``calls`` and return the answer."""
        with self._cond:
            self._in_flight[name] += 1
        try:
            result = answer()
        except Exception as exc:  # a bug in the stand-in must fail the test, not hang the client
            self._error(f"{name}: the stand-in itself failed: {exc!r}")
            result = failed()
        while time.monotonic() < arrived + self._delays.get(name, 0.0):
            time.sleep(0.02)
        with self._cond:
            self._in_flight[name] -= 1
            self.calls.append(record(result))
            self._cond.notify_all()
        return result

    def _error(self, message: str) -> None:
        with self._cond:
            self.spec_errors.append(message)
