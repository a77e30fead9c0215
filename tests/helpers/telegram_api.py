"""A loopback stand-in for the Telegram Bot API (https://api.telegram.org) for tests.

Our real code (python-telegram-bot's ``Bot`` built with ``base_url=f"{base}/bot"`` and
``base_file_url=f"{base}/file/bot"``) talks HTTP to this server exactly as it would to Telegram:

* ``POST|GET /bot<token>/<method>`` answers ``{"ok": true, "result": ...}`` with realistic
  objects (User, Message, File, WebhookInfo, ...) or Telegram's own error answers
  (401 Unauthorized, 404 Not Found, 400 "can't parse entities", "message is too long",
  "file is too big", 429 with ``parameters.retry_after`` on demand).
* ``GET /file/bot<token>/<file_path>`` serves bytes registered with :meth:`add_file`.
* ``getUpdates`` serves updates queued with :meth:`add_update` as Telegram does: an update is
  confirmed (forgotten) once getUpdates is called with a higher ``offset``; a long poll waits up
  to ``timeout`` seconds (at most :attr:`TelegramStandIn.max_poll_wait`) for one to arrive;
  ``allowed_updates`` filters by update type and is remembered between calls; while a webhook
  is set it answers 409 Conflict, and a long poll still waiting when another getUpdates
  arrives is answered 409 ("terminated by other getUpdates request"). ``deleteWebhook`` removes it (and with
  ``drop_pending_updates`` the queue). :attr:`TelegramStandIn.delivered` lists every update id
  handed out, in order.

Every call is recorded (:attr:`TelegramStandIn.calls`, once answered; :meth:`in_flight` counts
those still held by :meth:`set_delay`) and checked against the official
machine-readable spec (``tests/specs/telegram/bot-api.json``): unknown methods, missing
required fields, fields a method does not have, badly typed values and texts outside 1-4096
characters land in :attr:`TelegramStandIn.spec_errors`, which tests assert stays empty.
An HTML parse error is *not* a spec error: Telegram answers 400 and clients must fall back.
The HTML check is slightly stricter than Telegram's server, as the docs are: a bare ``>`` or an
``&`` that starts no entity is refused here, where the server would let it through.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import html
import itertools
import json
import re
import time
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.helpers.specs import TELEGRAM_BOT_API
from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

DEFAULT_SPEC = TELEGRAM_BOT_API
MAX_TEXT = 4096
MAX_DOWNLOAD = 20 * 1024 * 1024
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
HTML_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
})
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden: bot was blocked by the user",
    404: "Not Found", 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
}

_ATTR = r"""[a-zA-Z_:-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))?"""
_TAG_RE = re.compile(rf"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+{_ATTR})*)\s*>")
_ATTR_RE = re.compile(r"""([a-zA-Z_:-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'<>]+))?""")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#[xX][0-9a-fA-F]+);")


@dataclass
class Call:
    method: str  # canonical spec name, e.g. "sendMessage"; "file" for file downloads
    params: dict  # decoded parameters, values as sent (form values are strings)
    at: float  # time.monotonic() when the request arrived
    status: int  # HTTP status we answered
    answer: Any = None  # the JSON we answered (a sent message's id: answer["result"])


class EntityParseError(ValueError):
    """Raised with Telegram's wording when parse_mode=HTML markup is invalid."""


def html_to_text(markup: str) -> str:
    """The plain text Telegram would keep from ``markup``; raises EntityParseError like it."""
    out: list[str] = []
    stack: list[str] = []
    i = 0

    def offset() -> int:
        return len(markup[:i].encode("utf-8"))

    while i < len(markup):
        ch = markup[i]
        if ch == "&":
            m = _ENTITY_RE.match(markup, i)
            if not m:
                raise EntityParseError(f"Unsupported HTML entity at byte offset {offset()}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif ch == ">":
            raise EntityParseError(f'Unexpected ">" at byte offset {offset()}')
        elif ch == "<":
            m = _TAG_RE.match(markup, i)
            if not m:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset()}")
            closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3)
            if closing:
                if attrs.strip():
                    raise EntityParseError(f"Unclosed end tag at byte offset {offset()}")
                if not stack:
                    raise EntityParseError(f"Unexpected end tag at byte offset {offset()}")
                if stack[-1] != name:
                    raise EntityParseError(
                        f'Unmatched end tag at byte offset {offset()}, expected "</{stack[-1]}>", '
                        f'found "</{name}>"')
                stack.pop()
            else:
                if name not in HTML_TAGS:
                    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset()}')
                values = {k.lower(): (v or "").strip("\"'") for k, v in _ATTR_RE.findall(attrs)}
                if name == "span" and values.get("class") != "tg-spoiler":
                    raise EntityParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {offset()}')
                stack.append(name)
            i = m.end()
        else:
            out.append(ch)
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


@cache
def _load_spec(path: Path) -> dict[str, dict] | None:
    if not path.exists():
        warnings.warn(f"Telegram Bot API spec not found at {path}; requests go unchecked", stacklevel=2)
        return None
    return json.loads(path.read_text(encoding="utf-8"))["methods"]


def _type_ok(value: Any, types: list[str]) -> bool:
    """Loose check of one parameter against the spec's types (form values arrive as strings)."""
    for t in types:
        if t == "Integer":
            if (isinstance(value, int) and not isinstance(value, bool)) or (
                    isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
                return True
        elif t == "Float":
            try:
                float(value)
                return not isinstance(value, bool)
            except (TypeError, ValueError):
                pass
        elif t == "Boolean":
            if isinstance(value, bool) or value in ("true", "false", "True", "False"):
                return True
        elif t in ("String", "InputFile") or not isinstance(value, str):
            return True  # objects sent as JSON bodies or uploads: not checked further
        else:  # an object or array sent as a form value must be JSON
            try:
                return isinstance(json.loads(value), (dict, list))
            except ValueError:
                pass
    return False


def _decode_params(headers, body: bytes, query: str) -> dict:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    ctype = headers.get("Content-Type", "")
    if not body:
        return params
    if ctype.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("JSON body is not an object")
        params.update(decoded)
    elif ctype.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            params[name] = payload if part.get_filename() else payload.decode("utf-8")
    else:  # application/x-www-form-urlencoded (what python-telegram-bot sends without files)
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


class TelegramStandIn(LoopbackStandIn):
    """The fake Bot API server. ``start()`` it, point ``Bot`` at ``base_url``, then inspect."""

    service = "telegram"
    call_field = "method"

    def __init__(self, token: str = "123456:TEST-token", spec_path: Path | None = None,
                 username: str = "sealion_test_bot") -> None:
        super().__init__()
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.username = username
        self.spec = _load_spec(Path(spec_path or DEFAULT_SPEC).resolve())
        self._canonical = {name.lower(): name for name in self.spec or {}}
        self.calls: list[Call] = []
        self.webhook_url = ""
        self._files: dict[str, dict] = {}
        #: Updates not confirmed yet, oldest first (getUpdates).
        self._updates: list[dict] = []
        self._next_update_id = 700_000_001
        self._allowed_updates: list[str] | None = None
        #: Every update id getUpdates handed out, in order (repeats show as repeats).
        self.delivered: list[int] = []
        #: The longest a long poll is held here, whatever ``timeout`` it asked for.
        self.max_poll_wait = 2.0
        self._polls = 0  # getUpdates calls so far: a newer one ends the one waiting (409)
        self._message_ids = itertools.count(1)

    # ------------------------------------------------------------- test controls
    def _name(self, method: str) -> str:
        return method if method == "file" else self._canonical.get(method.lower(), method)

    def add_file(self, file_id: str, content: bytes, file_path: str | None = None,
                 file_size: int | None = None) -> None:
        path = file_path or f"documents/{file_id}"
        with self._cond:
            # A path names one file, as on Telegram: a file registered earlier (by another test
            # of the session) under the same path is replaced, not served instead.
            for other in [k for k, f in self._files.items() if f["file_path"] == path]:
                del self._files[other]
            self._files[file_id] = {
                "file_id": file_id,
                "file_unique_id": "AQAD" + hashlib.sha1(file_id.encode()).hexdigest()[:12],
                "file_size": len(content) if file_size is None else file_size,
                "file_path": path,
                "content": content,
            }

    def add_update(self, update: dict) -> int:
        """Queue an update for getUpdates (its ``update_id`` set if absent); returns the id."""
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": self._next_update_id, **update}
            self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
            self._updates.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    def pending_updates(self) -> list[int]:
        """Ids of the queued updates not confirmed yet."""
        with self._cond:
            return [u["update_id"] for u in self._updates]

    def reset(self) -> None:
        super().reset()
        with self._cond:
            self._updates.clear()
            self.delivered.clear()
            self._allowed_updates = None
            self.webhook_url = ""
            self.max_poll_wait = 2.0

    def fail_next(self, method: str, status: int = 429, retry_after: int | None = 1,
                  description: str | None = None, times: int = 1) -> None:
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else DEFAULT_DESCRIPTIONS.get(status, "Error"))
        answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            answer["parameters"] = {"retry_after": retry_after}
        with self._cond:
            self._failures[self._name(method)].extend([(status, answer)] * times)

    def set_delay(self, method: str, seconds: float) -> None:
        """Hold answers to ``method`` for ``seconds`` after arrival; lowering it (or reset())
        releases requests already held."""
        super().set_delay(method, seconds)

    # -------------------------------------------------------------- inspection
    def calls_to(self, method: str) -> list[Call]:
        return super().calls_to(method)

    def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        return super().wait_for(method, count, timeout)

    def in_flight(self, method: str) -> int:
        """How many requests to ``method`` arrived and are not answered yet (e.g. held by a delay);
        calls are only recorded in ``calls`` once answered."""
        return super().in_flight(method)

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of the sendMessage calls Telegram accepted (status 200), as sent."""
        return [c.params.get("text", "") for c in self.calls_to("sendMessage")
                if c.status == 200 and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))]

    # ------------------------------------------------------------------ serving
    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(req.path)
        path = unquote(url.path)
        try:
            params = _decode_params(req.headers, req.read_body(), url.query)
        except ValueError as exc:
            params, status, answer = {}, 400, _error(400, f"Bad Request: can't parse request: {exc}")
            self._error(f"{path}: undecodable request: {exc}")
        else:
            status, answer = None, None
        if path.startswith("/file/bot"):
            token, _, file_path = path[len("/file/bot"):].partition("/")
            method, params = "file", {"file_path": file_path}
        elif path.startswith("/bot"):
            token, _, method = path[len("/bot"):].partition("/")
            method = self._name(method)
        else:
            token, method = self.token, path
            status, answer = 404, _error(404, "Not Found")
        refused = (status, answer) if status is not None else None
        status, answer = self._serve(
            method, arrived,
            lambda: refused or self._answer(token, method, params),
            lambda: (500, _error(500, "Internal Server Error")),
            lambda result: Call(method, params, arrived, result[0],
                                None if isinstance(result[1], bytes) else result[1]))
        if isinstance(answer, bytes):
            req.answer(status, answer, "application/octet-stream")
        else:
            req.answer(status, json.dumps(answer).encode())

    def _answer(self, token: str, method: str, params: dict) -> tuple[int, Any]:
        if token != self.token:
            return 401, _error(401, "Unauthorized")
        if method != "file" and self.spec is not None and method not in self.spec:
            self._error(f"{method}: no such method in the Bot API")
            return 404, _error(404, "Not Found")
        missing = self._check_fields(method, params) if method != "file" else []
        with self._cond:
            queued = self._failures.get(method)
            if queued:
                return queued.popleft()
        if method == "file":
            found = next((f for f in self._files.values() if f["file_path"] == params["file_path"]), None)
            return (200, found["content"]) if found else (404, _error(404, "Not Found"))
        if missing:
            return 400, _error(400, f"Bad Request: {missing[0]} is empty")
        try:
            return 200, {"ok": True, "result": self._result(method, params)}
        except _Refused as refused:
            return 400, _error(400, f"Bad Request: {refused}")
        except _Conflict as conflict:
            return 409, _error(409, str(conflict))

    def _check_fields(self, method: str, params: dict) -> list[str]:
        """Record spec errors for this call's fields; return the required ones missing."""
        if self.spec is None:
            return []
        fields = {f["name"]: f for f in self.spec[method].get("fields", [])}
        missing = [n for n, f in fields.items() if f["required"] and params.get(n) is None]
        for name in missing:
            self._error(f"{method}: required field {name!r} missing")
        for name, value in params.items():
            if name not in fields:
                if not isinstance(value, bytes):  # uploads may be "attach://<name>" parts
                    self._error(f"{method}: unknown field {name!r}")
            elif not _type_ok(value, fields[name]["types"]):
                self._error(f"{method}: field {name!r}={value!r} is not {fields[name]['types']}")
        return missing

    def _result(self, method: str, params: dict) -> Any:
        if method == "getMe":
            return {**self._bot_user(), "can_join_groups": True,
                    "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method in ("sendMessage", "editMessageText"):
            self._check_text(method, params)
        if method == "sendChatAction" and params.get("action") not in CHAT_ACTIONS:
            self._error(f"sendChatAction: unknown action {params.get('action')!r}")
            raise _Refused("wrong parameter action in request")
        if method == "getFile":
            with self._cond:
                found = self._files.get(str(params.get("file_id")))
            if found is None:
                raise _Refused("invalid file_id")
            if found["file_size"] > MAX_DOWNLOAD:
                raise _Refused("file is too big")
            return {k: v for k, v in found.items() if k != "content"}
        if method == "setWebhook":
            url = str(params.get("url", ""))
            if url and not url.startswith("https://"):
                raise _Refused("bad webhook: An HTTPS URL must be provided for webhook")
            self.webhook_url = url
            return True
        if method == "deleteWebhook":
            with self._cond:
                self.webhook_url = ""
                if str(params.get("drop_pending_updates", "")).lower() == "true":
                    self._updates.clear()
            return True
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "getWebhookInfo":
            return {"url": self.webhook_url, "has_custom_certificate": False,
                    "pending_update_count": 0}
        returns = (self.spec or {}).get(method, {}).get("returns", ["Boolean"])
        if "Message" in returns and params.get("chat_id") is not None:
            return self._message(method, params)
        if returns[0].startswith("Array of"):
            return []
        return True

    def _get_updates(self, params: dict) -> list[dict]:
        if self.webhook_url:
            raise _Conflict("Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        deadline = time.monotonic() + wait
        with self._cond:
            self._polls += 1
            mine = self._polls
            self._cond.notify_all()  # a long poll still waiting is ended by this one
            if allowed is not None:
                self._allowed_updates = list(allowed) or None
            if params.get("offset") is not None:
                offset = int(params["offset"])
                self._updates = [u for u in self._updates if u["update_id"] >= offset]

            def ready() -> list[dict]:
                kinds = self._allowed_updates
                return [u for u in self._updates
                        if kinds is None or any(k in u for k in kinds)][:limit]

            found = ready()
            while not found and time.monotonic() < deadline and not self.webhook_url:
                self._cond.wait(max(deadline - time.monotonic(), 0.0))
                if self._polls != mine:
                    raise _Conflict("Conflict: terminated by other getUpdates request; make "
                                    "sure that only one bot instance is running")
                found = ready()
            self.delivered.extend(u["update_id"] for u in found)
            return found

    def _check_text(self, method: str, params: dict) -> None:
        raw = params.get("text")
        if raw is None:
            return
        text = str(raw)
        if params.get("parse_mode", "").upper() == "HTML":
            try:
                text = html_to_text(text)
            except EntityParseError as exc:
                raise _Refused(f"can't parse entities: {exc}") from None
        if not text.strip():
            self._error(f"{method}: text is empty after entity parsing")
            raise _Refused("message text is empty")
        if len(text) > MAX_TEXT:
            self._error(f"{method}: text is {len(text)} characters after entity parsing (max {MAX_TEXT})")
            raise _Refused("message is too long")

    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "SEA-LION", "username": self.username}

    def _message(self, method: str, params: dict) -> dict:
        chat_id = params["chat_id"]
        try:
            chat = {"id": int(chat_id), "type": "private" if int(chat_id) > 0 else "supergroup"}
        except ValueError:
            chat = {"id": -1001000000001, "type": "channel", "username": str(chat_id).lstrip("@")}
        message: dict[str, Any] = {"date": int(time.time()), "chat": chat, "from": self._bot_user()}
        if method.startswith("edit"):
            message["message_id"] = int(params.get("message_id") or 0)
            message["edit_date"] = message["date"]
        else:
            message["message_id"] = next(self._message_ids)
        if "text" in params:
            text = str(params["text"])
            message["text"] = html_to_text(text) if params.get("parse_mode", "").upper() == "HTML" else text
        if "caption" in params:
            message["caption"] = str(params["caption"])
        return message


class _Refused(Exception):
    """Telegram answered 400 "Bad Request: <message>"."""


class _Conflict(Exception):
    """Telegram answered 409 (getUpdates while a webhook is set)."""


def _error(status: int, description: str) -> dict:
    return {"ok": False, "error_code": status, "description": description}
