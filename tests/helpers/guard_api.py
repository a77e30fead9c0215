"""A loopback OpenAI-compatible guard server (vLLM serving SEA-Guard or Qwen3Guard), for tests.

It answers ``GET /v1/models`` and ``POST /v1/chat/completions`` and decides deterministically:

- a check of the person's message (SEA-Guard: the prompt alone) is unsafe when the text holds
  one of ``unsafe_words`` (default ``UNSAFE-INPUT``) or a photo is mostly red;
- a check of an answer (``Human user:{prompt}\\nAI assistant:{response}``) is unsafe when the
  prompt holds ``UNSAFE-ANSWER`` (the test's way to flag whatever the random model says) or the
  answer holds an unsafe word.

It checks our requests as AI Singapore's model card and the OpenAI API ask: the model served,
temperature 0, no system prompt, one user message (SEA-Guard), the ``Human user:``/``AI
assistant:`` layout, images as decodable ``data:image/...;base64`` URLs; anything else goes to
``spec_errors``. ``down = True`` answers 503 (a guard that is down), and ``set_delay`` holds
answers, as in every stand-in.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

SEA_GUARD = "sea-guard"
QWEN3GUARD = "qwen3guard"


@dataclass
class GuardCall:
    name: str  # "models" | "chat"
    body: dict
    at: float
    status: int
    side: str = ""  # "input" | "output"
    prompt: str = ""
    response: str | None = None
    images: int = 0
    answer: str = ""
    extra: dict = field(default_factory=dict)


class GuardStandIn(LoopbackStandIn):
    service = "guard"

    def __init__(self, model: str = "aisingapore/Qwen-SEA-Guard-4B-2602",
                 guard_format: str = SEA_GUARD, api_key: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.format = guard_format
        self.api_key = api_key
        self.unsafe_words = {"UNSAFE-INPUT"}
        self.down = False

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def reset(self) -> None:
        super().reset()
        self.down = False

    def checks(self, side: str | None = None) -> list[GuardCall]:
        return [c for c in self.calls_to("chat") if side is None or c.side == side]

    # ------------------------------------------------------------------ serving
    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        path = req.path.split("?", 1)[0]
        body_bytes = req.read_body()
        if self.api_key and req.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._error(f"{path}: missing or wrong bearer token")
        if req.command == "GET" and path == "/v1/models":
            status, answer = self._serve(
                "models", arrived,
                lambda: (200, {"object": "list", "data": [{"id": self.model,
                                                           "object": "model"}]}),
                lambda: (500, {"error": {"message": "stand-in failed"}}),
                lambda r: GuardCall("models", {}, arrived, r[0]))
        elif req.command == "POST" and path == "/v1/chat/completions":
            try:
                body = json.loads(body_bytes)
            except ValueError:
                self._error("chat: body is not JSON")
                body = {}
            holder: dict[str, Any] = {}
            status, answer = self._serve(
                "chat", arrived, lambda: self._chat(body, holder),
                lambda: (500, {"error": {"message": "stand-in failed"}}),
                lambda r: GuardCall("chat", body, arrived, r[0], **holder))
        else:
            self._error(f"unexpected {req.command} {path}")
            status, answer = 404, {"error": {"message": "not found"}}
        req.answer(status, json.dumps(answer).encode())

    def _chat(self, body: dict, holder: dict[str, Any]) -> tuple[int, dict]:
        if self.down:
            return 503, {"error": {"message": "guard is down"}}
        if body.get("model") != self.model:
            self._error(f"chat: model {body.get('model')!r} is not served")
            return 404, {"error": {"message": "model not found"}}
        if body.get("temperature") != 0:
            self._error(f"chat: temperature {body.get('temperature')!r}, expected 0")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            self._error("chat: max_tokens missing")
        messages = body.get("messages") or []
        if any(m.get("role") == "system" for m in messages):
            self._error("chat: a guard takes no system prompt")
        prompt, response, images = self._read(messages)
        unsafe_text = any(w in (prompt if response is None else response)
                          for w in self.unsafe_words)
        if response is None:
            side = "input"
            unsafe = unsafe_text or any(_mostly_red(i) for i in images)
        else:
            side = "output"
            unsafe = unsafe_text or "UNSAFE-ANSWER" in prompt
        if self.format == QWEN3GUARD:
            answer = ("Safety: Unsafe\nCategories: Violent" if unsafe
                      else "Safety: Safe\nCategories: None")
            if response is not None:
                answer += "\nRefusal: No"
        else:
            answer = "unsafe" if unsafe else "safe"
        holder.update(side=side, prompt=prompt, response=response, images=len(images),
                      answer=answer)
        return 200, {
            "id": f"chatcmpl-{int(time.time() * 1000)}", "object": "chat.completion",
            "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}

    def _read(self, messages: list[dict]) -> tuple[str, str | None, list[bytes]]:
        """The prompt, the response (None for an input check) and the images of a request."""
        images: list[bytes] = []

        def content_text(message: dict) -> str:
            content = message.get("content")
            if isinstance(content, str):
                return content
            texts = []
            for part in content or []:
                if part.get("type") == "text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "image_url":
                    images.append(self._image(part))
                else:
                    self._error(f"chat: unknown content part {part.get('type')!r}")
            return "".join(texts)

        if self.format == QWEN3GUARD:
            roles = [m.get("role") for m in messages]
            if roles not in (["user"], ["user", "assistant"]):
                self._error(f"chat: Qwen3Guard roles {roles}")
            prompt = content_text(messages[0]) if messages else ""
            response = content_text(messages[1]) if len(messages) > 1 else None
            return prompt, response, images
        if [m.get("role") for m in messages] != ["user"]:
            self._error("chat: SEA-Guard takes exactly one user message")
        text = content_text(messages[0]) if messages else ""
        if text.startswith("Human user:"):
            prompt, sep, response = text[len("Human user:"):].partition("\nAI assistant:")
            if not sep:
                self._error("chat: 'Human user:' without '\\nAI assistant:'")
            if images:
                self._error("chat: images sent with a response check")
            return prompt, response, images
        if "AI assistant:" in text:
            self._error("chat: 'AI assistant:' in a prompt-only check")
        return text, None, images

    def _image(self, part: dict) -> bytes:
        url = (part.get("image_url") or {}).get("url", "")
        head, _, data = url.partition(",")
        if not head.startswith("data:image/") or not head.endswith(";base64"):
            self._error(f"chat: image is not a base64 data URL ({head[:30]!r})")
            return b""
        try:
            raw = base64.b64decode(data, validate=True)
            from PIL import Image

            Image.open(io.BytesIO(raw)).verify()
        except Exception as exc:  # noqa: BLE001 - any undecodable image is a spec error
            self._error(f"chat: undecodable image ({exc})")
            return b""
        return raw


def _mostly_red(data: bytes) -> bool:
    if not data:
        return False
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB").resize((8, 8))
    r, g, b = (sum(band) / 64 for band in zip(*image.getdata(), strict=True))
    return r > 180 and g < 80 and b < 80
