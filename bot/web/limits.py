"""Request body limits for every route, enforced before and while a body is read.

    app.add_middleware(BodyLimit, webhook_bytes=..., other_bytes=...)

A declared `Content-Length` above the route's limit is answered 413 before one byte of the body
is read; a body without one (chunked) is counted as it streams and refused with 413 as soon as it
passes the limit, so no request costs more memory than its limit. Webhooks (`/webhooks/...`) get
the larger limit; every other route (the admin forms) the smaller one.

Exception tree:

    starlette.exceptions.HTTPException
     └── BodyTooLarge        status 413; raised from `receive` while a body streams in
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEBHOOK_PREFIX = "/webhooks/"


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (an HTTPException, so FastAPI's body parsing
    passes it on as a 413 instead of turning it into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit of its route (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, webhook_bytes: int, other_bytes: int,
                 prefixes: dict[str, int] | None = None) -> None:
        self.app = app
        self.webhook_bytes = webhook_bytes
        self.other_bytes = other_bytes
        #: Path prefixes with limits of their own (the web chat's photo uploads).
        self.prefixes = prefixes or {}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.prefixes.items():
            if path.startswith(prefix):
                return limit
        return self.webhook_bytes if path.startswith(WEBHOOK_PREFIX) else self.other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)  # the body is never read
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = b'{"detail":"request body over ' + str(limit).encode() + b' bytes"}'
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
