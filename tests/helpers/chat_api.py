"""A loopback OpenAI-compatible chat server (vLLM, SGLang, the hosted SEA-LION API) that answers
at once, for tests and benchmarks of everything around the model.

It answers ``GET /v1/models`` with the one model it serves and ``POST /v1/chat/completions``
(``"stream": false``) with a fixed answer (:attr:`ChatStandIn.answer`) and a ``usage`` block, as
the OpenAI API does. A request it would refuse is answered as such a server answers it (404 for
a model it does not serve, 400 for a body that is no chat request, 401 for a missing or wrong
bearer token when ``api_key`` is set) and lands in :attr:`~ChatStandIn.spec_errors`. Calls are
recorded (:attr:`~ChatStandIn.calls`, names ``"models"`` and ``"chat"``); ``set_delay("chat",
s)`` makes it a slow model, as in every stand-in (tests/helpers/standin.py).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

DEFAULT_ANSWER = "Kuala Lumpur is the capital of Malaysia, and Putrajaya is its seat of government."


@dataclass
class ChatCall:
    name: str  # "models" | "chat" | the path of anything else
    body: Any  # the decoded JSON body of a chat request; None otherwise
    at: float  # time.monotonic() when the request arrived
    status: int  # HTTP status we answered


class ChatStandIn(LoopbackStandIn):
    """The fake server. ``start()`` it and point the OpenAI-compatible client at :attr:`v1`."""

    service = "chat"

    def __init__(self, model: str = "aisingapore/sealion-stand-in",
                 answer: str = DEFAULT_ANSWER, api_key: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.answer = answer
        self.api_key = api_key
        self.calls: list[ChatCall] = []
        self._ids = itertools.count(1)

    @property
    def v1(self) -> str:
        """The API root (``OPENAI_BASE_URL``)."""
        return f"{self.base_url}/v1"

    # ------------------------------------------------------------------ serving
    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        path = req.path.split("?", 1)[0]
        raw = req.read_body()
        if self.api_key and req.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._error(f"{path}: missing or wrong bearer token")
            status, answer = 401, _error("Incorrect API key provided", "invalid_api_key")
        elif req.command == "GET" and path == "/v1/models":
            status, answer = self._serve(
                "models", arrived,
                lambda: (200, {"object": "list", "data": [
                    {"id": self.model, "object": "model", "created": 0, "owned_by": "stand-in"}]}),
                lambda: (500, _error("the stand-in failed", "server_error")),
                lambda r: ChatCall("models", None, arrived, r[0]))
        elif req.command == "POST" and path == "/v1/chat/completions":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            status, answer = self._serve(
                "chat", arrived, lambda: self._chat(body),
                lambda: (500, _error("the stand-in failed", "server_error")),
                lambda r: ChatCall("chat", body, arrived, r[0]))
        else:
            self._error(f"unexpected {req.command} {path}")
            status, answer = 404, _error(f"no route {req.command} {path}", "not_found")
        req.answer(status, json.dumps(answer).encode())

    def _chat(self, body: Any) -> tuple[int, dict]:
        if not isinstance(body, dict):
            self._error("chat: the body is not a JSON object")
            return 400, _error("the body is not a JSON object", "invalid_request_error")
        if body.get("model") != self.model:
            self._error(f"chat: model {body.get('model')!r} is not served")
            return 404, _error(f"The model `{body.get('model')}` does not exist.",
                               "model_not_found")
        messages = body.get("messages")
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and m.get("role") in
                           ("system", "user", "assistant") for m in messages)):
            self._error("chat: messages must be a non-empty list of system/user/assistant turns")
            return 400, _error("invalid messages", "invalid_request_error")
        if body.get("stream"):
            self._error("chat: streaming is not served here")
            return 400, _error("stream is not supported", "invalid_request_error")
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            self._error(f"chat: max_tokens {limit!r}")
            return 400, _error("max_tokens must be a positive integer", "invalid_request_error")
        completion = len(self.answer.split())
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
        return 200, {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.answer}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def _error(message: str, code: str) -> dict:
    """An error body as the OpenAI API writes it."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": code}}
