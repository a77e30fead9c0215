"""A loopback HTTP server for the fetch policy's tests (adapters/fetch.py): bodies of any size,
streamed bodies without a length, redirects, slow answers.

Routes (GET):

* ``/bytes/<n>`` — ``n`` bytes with a Content-Length (call name ``"bytes"``);
* ``/stream/<n>`` — ``n`` bytes, chunked, no Content-Length (``"stream"``); the bytes the
  server managed to write before the client hung up are in :attr:`FetchServer.streamed`;
* ``/announce/<n>`` — announces ``n`` bytes in Content-Length and sends none (``"announce"``);
* ``/redirect?to=<url>&status=302`` — a redirect to ``url`` (``"redirect"``);
* ``/slow/<seconds>`` — answers after ``seconds`` (``"slow"``);
* ``/gzip/<n>`` — ``n`` zero bytes sent gzip-compressed, whatever the client accepts
  (``"gzip"``).

Each request is recorded once answered, with its headers (``calls``), so a test can check that
a server was never reached, or never saw a token.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from tests.helpers.standin import LoopbackHandler, LoopbackStandIn


@dataclass
class FetchCall:
    name: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


class FetchServer(LoopbackStandIn):
    service = "fetch"

    def __init__(self) -> None:
        super().__init__()
        self.streamed = 0

    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(req.path)
        parts = [p for p in url.path.split("/") if p]
        query = dict(parse_qsl(url.query))
        name = parts[0] if parts else "root"
        headers = {k.lower(): v for k, v in req.headers.items()}

        def record(status: int) -> FetchCall:
            return FetchCall(name, req.path, headers, status)

        if name == "slow":
            time.sleep(float(parts[1]))
        if name == "stream":
            self._serve(name, arrived, lambda: 200, lambda: 500, record)
            self._stream(req, int(parts[1]))
            return
        status = self._serve(name, arrived, lambda: 302 if name == "redirect" else 200,
                             lambda: 500, record)
        if name == "redirect":
            req.answer(int(query.get("status", "302")), b"", "text/plain",
                       {"Location": query["to"]})
        elif name == "bytes":
            req.answer(status, b"x" * int(parts[1]), "application/octet-stream")
        elif name == "announce":
            req.send_response(200)
            req.send_header("Content-Length", parts[1])
            req.end_headers()
        elif name == "gzip":
            req.answer(status, gzip.compress(b"\0" * int(parts[1])), "application/octet-stream",
                       {"Content-Encoding": "gzip"})
        else:
            req.answer(200 if name == "slow" else 404, b"ok", "text/plain")

    def _stream(self, req: LoopbackHandler, size: int) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/octet-stream")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        chunk = b"y" * 65536
        self.streamed = 0
        try:
            while self.streamed < size:
                piece = chunk[:size - self.streamed]
                req.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                req.wfile.flush()
                self.streamed += len(piece)
            req.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        req.close_connection = True
