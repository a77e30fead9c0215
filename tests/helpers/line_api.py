"""A loopback stand-in for the LINE Messaging API (api.line.me and api-data.line.me) for tests.

Our real code (line-bot-sdk v3's ``MessagingApi``/``AsyncMessagingApi`` and ``MessagingApiBlob``
built with ``Configuration(host=base_url, access_token=...)``) talks HTTP to this one server
exactly as it would to LINE's two hosts:

* ``POST /v2/bot/message/reply`` spends a reply token once (:meth:`LineStandIn.issue_reply_token`
  makes them; unknown, used or :meth:`~LineStandIn.expire_reply_token`-ed ones answer 400
  ``{"message": "Invalid reply token"}``) and answers ``{"sentMessages": [...]}``.
* ``POST /v2/bot/message/push`` honours ``X-Line-Retry-Key``: a key already accepted answers 409
  with ``x-line-accepted-request-id`` and sends nothing again; a key that is no UUID answers 400.
* ``POST /v2/bot/chat/loading/start`` answers 202 ``{}`` for 5..60 seconds in steps of 5.
* ``POST /v2/bot/chat/markAsRead`` answers 200 ``{}`` for a non-empty ``markAsReadToken``
  (:meth:`~LineStandIn.marked_read` lists the tokens spent).
* ``GET /v2/bot/profile/{userId}`` serves :meth:`~LineStandIn.set_profile` profiles (404
  otherwise), as do the group/room member profile paths; ``GET /v2/bot/info`` the bot itself.
* ``GET /v2/bot/message/{messageId}/content`` (an api-data.line.me path) serves bytes registered
  with :meth:`~LineStandIn.add_content`, and ``.../content/transcoding`` says they are ready.
* Every other path of the spec answers 200 ``{}``; a path outside it 404.

LINE's own rules answer 400 with LINE's wording (``{"message": "The request body has N error(s)",
"details": [{"message": ..., "property": "messages[0].text"}]}``): 1..5 messages, known message
types, text 1..5000 UTF-16 code units. A missing or wrong ``Authorization: Bearer`` answers 401.

Every call is recorded (:attr:`LineStandIn.calls`, once answered; :meth:`~LineStandIn.in_flight`
counts those still held by :meth:`~LineStandIn.set_delay`) and its JSON body is validated against
the operation's request schema in the official OpenAPI spec
(``tests/specs/line/messaging-api.yml``, discriminators resolved, so ``{"type": "text"}`` must
be a whole TextMessage); schema violations answer 400 too. Violations of the spec or of the rules
above land in :attr:`LineStandIn.spec_errors`, which tests assert stays empty. A spent or expired
reply token is *not* a spec error: LINE answers 400 and clients must cope (e.g. fall back to push).
Without a spec (``spec_path=None``) only LINE's own rules are checked and unknown paths answer
200 ``{}``.

:func:`webhook_errors` checks webhook bodies (``tests/data/line/*.json``) against the
``CallbackRequest`` schema of ``tests/specs/line/webhook.yml`` (:func:`schema_errors` any value
against any schema of a spec); :func:`load_webhook` loads a fixture, and :func:`sign_body`
computes the ``x-line-signature`` LINE would send with a body.
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import ValidationError, validators
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from tests.helpers.specs import LINE_SPECS
from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

DEFAULT_SPEC = LINE_SPECS / "messaging-api.yml"
DEFAULT_WEBHOOK_SPEC = LINE_SPECS / "webhook.yml"
FIXTURES = Path(__file__).resolve().parents[1] / "data/line"
MAX_MESSAGES = 5
MAX_TEXT = 5000  # UTF-16 code units, as LINE counts them (an emoji outside the BMP counts 2)
MESSAGE_TYPES = frozenset({  # used when no spec is loaded
    "text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap", "template",
    "flex", "coupon",
})
QUOTABLE = frozenset({"text", "textV2", "sticker", "image", "video"})
AUTH_FAILED = ("Authentication failed. Confirm that the access token in the authorization header "
               "is valid.")
DEFAULT_MESSAGES = {
    400: "The request body has 1 error(s)", 401: AUTH_FAILED,
    403: "Access to this API is not available for your account", 404: "Not found",
    409: "The retry key is already accepted", 410: "Gone",
    429: "The API rate limit has been exceeded. Try again later.",
    500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
}
# Our short names for the operations the bot uses; other spec paths are named by their path.
ROUTES = {
    ("POST", "/v2/bot/message/reply"): "reply",
    ("POST", "/v2/bot/message/push"): "push",
    ("POST", "/v2/bot/chat/loading/start"): "loading",
    ("POST", "/v2/bot/chat/markAsRead"): "mark_as_read",
    ("GET", "/v2/bot/profile/{userId}"): "profile",
    ("GET", "/v2/bot/message/{messageId}/content"): "content",
    ("GET", "/v2/bot/message/{messageId}/content/transcoding"): "transcoding",
    ("GET", "/v2/bot/group/{groupId}/member/{userId}"): "member_profile",
    ("GET", "/v2/bot/room/{roomId}/member/{userId}"): "member_profile",
    ("GET", "/v2/bot/info"): "bot_info",
}
ALIASES = {  # operationId -> short name, so calls_to("replyMessage") works too
    "replyMessage": "reply", "pushMessage": "push", "showLoadingAnimation": "loading",
    "markMessagesAsReadByToken": "mark_as_read",
    "getProfile": "profile", "getMessageContent": "content", "getBotInfo": "bot_info",
    "getMessageContentTranscodingByMessageId": "transcoding",
    "getGroupMemberProfile": "member_profile", "getRoomMemberProfile": "member_profile",
}
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass
class Call:
    name: str  # "reply" | "push" | "loading" | "profile" | "content" | "bot_info" | other path
    path: str  # as requested, without the query
    headers: dict  # request headers, lower-case names
    body: Any  # parsed JSON, raw bytes for other bodies, or None
    at: float  # time.monotonic() when the request arrived
    status: int  # HTTP status we answered


# ------------------------------------------------------------------ OpenAPI schema checks
_active = threading.local()


def _discriminator(validator, discriminator: dict, instance: Any, schema: dict) -> Iterator:
    """OpenAPI polymorphism as LINE's specs write it: the base schema (``Message``) names its
    subtypes in ``discriminator.mapping`` and each subtype ``allOf``-includes the base, so the
    instance is checked against the subtype its ``type`` names (once: the guard stops the
    subtype's own reference back to the base from dispatching again)."""
    if not isinstance(instance, dict) or any(k in schema for k in ("allOf", "anyOf", "oneOf")):
        return  # discriminators next to *Of are handled by openapi-schema-validator itself
    prop, mapping = discriminator["propertyName"], discriminator.get("mapping") or {}
    if not mapping or prop not in instance:
        return  # a missing property is the "required" keyword's business
    target = mapping.get(instance[prop]) if isinstance(instance[prop], str) else None
    if target is None:
        yield ValidationError(f"{instance[prop]!r} is not one of {sorted(mapping)}", path=[prop])
        return
    active = _active.__dict__.setdefault("keys", set())
    key = (id(instance), target)
    if key in active:
        return
    active.add(key)
    try:
        yield from validator.descend(instance, {"$ref": target})
    finally:
        active.discard(key)


_Validator = validators.extend(OAS30Validator, {"discriminator": _discriminator})


@cache
def _load_spec(path: Path) -> dict | None:
    if not path.exists():
        warnings.warn(f"LINE OpenAPI spec not found at {path}; requests go unchecked", stacklevel=2)
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


@cache
def _validator(path: Path, pointer: str) -> Any:
    """A validator for the schema at JSON pointer ``pointer`` of the spec at ``path``; refs
    (``#/components/schemas/...``) resolve against the whole spec."""
    spec = _load_spec(path)
    schema = spec
    for part in pointer.strip("/").split("/"):
        schema = schema[part.replace("~1", "/").replace("~0", "~")]
    root = {"components": spec.get("components", {}), "allOf": [schema]}
    return _Validator(root, format_checker=oas30_format_checker)


def _where(path: Iterator) -> str:
    """``messages[0].text`` for the error path deque(['messages', 0, 'text'])."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_problems(spec_path: Path, pointer: str, instance: Any) -> list[tuple[str, str]]:
    """[(property, message)] for each way ``instance`` breaks the schema, LINE-style: a missing
    property is reported at its own path (``messages[0].text``: "must be specified")."""
    found = []
    for error in _validator(spec_path, pointer).iter_errors(instance):
        where = _where(error.absolute_path)
        message = error.message
        if error.validator == "required" and (m := re.fullmatch(r"'(.+)' is a required property",
                                                                error.message)):
            where, message = f"{where}.{m.group(1)}" if where else m.group(1), "must be specified"
        elif error.validator in ("maxItems", "minItems", "maxLength", "minLength"):
            size = len(error.instance)
            message = f"size {size} is not within {error.validator} {error.validator_value}"
        elif len(message) > 300:
            message = message[:297] + "..."
        found.append((where or "<body>", message))
    # a subtype allOf-includes its base, so the base's own keywords may speak twice
    return list(dict.fromkeys(found))


def schema_errors(instance: Any, schema: str, spec_path: Path | None = None) -> list[str]:
    """Where ``instance`` breaks ``#/components/schemas/<schema>`` of an OpenAPI spec (the
    Messaging API's by default); empty when it fits."""
    path = Path(spec_path or DEFAULT_SPEC).resolve()
    if _load_spec(path) is None:
        raise FileNotFoundError(path)
    return [f"{where}: {message}" for where, message in
            _schema_problems(path, f"/components/schemas/{schema}", instance)]


def webhook_errors(body: Any, spec_path: Path | None = None) -> list[str]:
    """Where ``body`` breaks webhook.yml's ``CallbackRequest`` schema (empty when it fits)."""
    return schema_errors(body, "CallbackRequest", spec_path or DEFAULT_WEBHOOK_SPEC)


def load_webhook(name: str, reply_token: str | None = None) -> dict:
    """The fixture ``tests/data/line/<name>.json``; ``reply_token`` replaces every event's
    replyToken (use one from :meth:`LineStandIn.issue_reply_token`)."""
    body = json.loads((FIXTURES / f"{name.removesuffix('.json')}.json").read_text("utf-8"))
    if reply_token is not None:
        for event in body["events"]:
            if "replyToken" in event:
                event["replyToken"] = reply_token
    return body


def sign_body(body: bytes, channel_secret: str) -> str:
    """The ``x-line-signature`` LINE sends with a webhook body:
    base64(HMAC-SHA256(channel secret, body))."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- server
class _Handler(LoopbackHandler):
    do_PUT = do_DELETE = LoopbackHandler.do_GET


class _Answer(Exception):
    """Answer ``status`` with ``body`` (a dict for JSON) right away."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _bad_request(problems: list[tuple[str, str]]) -> _Answer:
    return _Answer(400, {"message": f"The request body has {len(problems)} error(s)",
                         "details": [{"message": m, "property": p} for p, m in problems]})


class LineStandIn(LoopbackStandIn):
    """The fake Messaging API server. ``start()`` it, point the SDK's ``Configuration(host=...)``
    (and LINE_API_BASE_URL / LINE_DATA_API_BASE_URL) at ``base_url``, then inspect."""

    service = "line"
    handler = _Handler

    def __init__(self, channel_access_token: str = "line-test-token",
                 spec_path: Path | None = None,
                 bot_user_id: str = "Ubot0000000000000000000000000000") -> None:
        super().__init__()
        self.channel_access_token = channel_access_token
        self.bot_user_id = bot_user_id
        self.spec_path = Path(spec_path).resolve() if spec_path is not None else None
        self.spec = _load_spec(self.spec_path) if self.spec_path else None
        self.calls: list[Call] = []
        self._routes = self._compile_routes()
        self._contents: dict[str, tuple[bytes, str]] = {}
        self._profiles: dict[str, dict] = {}
        self._reply_tokens: dict[str, str] = {}  # token -> who it was issued for
        self._spent_tokens: set[str] = set()
        self._retry_keys: dict[str, tuple[str, list[dict]]] = {}  # key -> (request id, sent)
        self._message_ids = itertools.count(561230966842064897)

    def reset(self) -> None:
        """Forget calls, spec errors, failures, delays and accepted retry keys; contents,
        profiles and reply tokens (issued, spent, expired) stay."""
        with self._cond:
            super().reset()
            self._retry_keys.clear()

    # ------------------------------------------------------------- test controls
    @staticmethod
    def _name(name: str) -> str:
        return ALIASES.get(name, name)

    def add_content(self, message_id: str, content: bytes,
                    content_type: str = "image/jpeg") -> None:
        with self._cond:
            self._contents[str(message_id)] = (bytes(content), content_type)

    def set_profile(self, user_id: str, display_name: str = "Test User",
                    language: str | None = None) -> None:
        profile = {"displayName": display_name, "userId": user_id,
                   "pictureUrl": "https://profile.line-scdn.net/0h"
                                 + hashlib.sha1(user_id.encode()).hexdigest()[:24]}
        if language is not None:
            profile["language"] = language
        with self._cond:
            self._profiles[user_id] = profile

    def issue_reply_token(self, to: str) -> str:
        """A fresh reply token, as LINE puts in a webhook event from ``to`` (a user, group or
        room ID); replies spending it count as sent to ``to`` in :meth:`sent_texts`."""
        token = uuid.uuid4().hex
        with self._cond:
            self._reply_tokens[token] = to
        return token

    def expire_reply_token(self, token: str) -> None:
        with self._cond:
            self._spent_tokens.add(token)

    def fail_next(self, name: str, status: int, message: str | None = None, times: int = 1,
                  retry_after: int | None = None) -> None:
        """The next ``times`` calls to ``name`` answer ``status`` ``{"message": message}`` (with a
        ``Retry-After`` header when given) once authenticated, without doing anything."""
        if message is None:
            message = DEFAULT_MESSAGES.get(status, "Error")
        body = {"message": message}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._cond:
            self._failures[self._name(name)].extend([(status, body, headers)] * times)

    # -------------------------------------------------------------- inspection
    def marked_read(self) -> list[str]:
        """The markAsReadTokens of the answered mark-as-read calls, in order."""
        return [c.body["markAsReadToken"] for c in self.calls_to("mark_as_read")
                if c.status == 200]

    def sent_texts(self, to: str | None = None) -> list[str]:
        """Texts of the text messages LINE accepted (status 200) by reply or push, in order; a
        reply counts as sent to whoever its token was issued for."""
        texts = []
        with self._cond:
            for call in self.calls:
                if call.name not in ("reply", "push") or call.status != 200:
                    continue
                target = (call.body.get("to") if call.name == "push"
                          else self._reply_tokens.get(call.body.get("replyToken")))
                if to is None or target == to:
                    texts += [m.get("text", "") for m in call.body.get("messages", [])
                              if m.get("type") in ("text", "textV2")]
        return texts

    # ------------------------------------------------------------------ serving
    def _compile_routes(self) -> list[tuple[re.Pattern, str, set[str]]]:
        templates: dict[str, set[str]] = collections.defaultdict(set)
        for method, template in ROUTES:
            templates[template].add(method)
        for template, ops in ((self.spec or {}).get("paths") or {}).items():
            templates[template] |= {m.upper() for m in ops
                                    if m in ("get", "post", "put", "delete", "patch")}
        routes = []
        for template, methods in templates.items():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            routes.append((re.compile(pattern + "$"), template, methods))
        # literal segments win over parameters: /v2/bot/richmenu/list is no {richMenuId}
        routes.sort(key=lambda r: -sum("{" not in s for s in r[1].split("/")))
        return routes

    def _route(self, method: str, path: str) -> tuple[str | None, dict, str, bool]:
        """(template, path parameters, name, whether the template has ``method``) for a request;
        template is None when no path matches."""
        matched = None
        for pattern, template, methods in self._routes:
            m = pattern.match(path)
            if m and method in methods:
                return template, m.groupdict(), ROUTES.get((method, template), path), True
            if m and matched is None:
                matched = template
        return matched, {}, path, False

    def _handle(self, req: _Handler) -> None:
        arrived = time.monotonic()
        url = urlsplit(req.path)
        path = unquote(url.path)
        headers = {k.lower(): v for k, v in req.headers.items()}
        raw = req.read_body()
        body: Any = None
        undecodable = None
        if raw:
            if headers.get("content-type", "").startswith("application/json"):
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    body, undecodable = raw, str(exc)
            else:
                body = raw
        template, params, name, allowed = self._route(req.command, path)
        request_id = str(uuid.uuid4())
        status, answer, extra = self._serve(
            name, arrived,
            lambda: self._answer(req.command, path, template, allowed, name, params, headers, body,
                                 undecodable, request_id),
            lambda: (500, {"message": "Internal server error"}, {}),
            lambda result: Call(name, path, headers, body, arrived, result[0]))
        extra = {"x-line-request-id": request_id, **extra}
        if isinstance(answer, tuple):  # (bytes, content type)
            req.answer(status, answer[0], answer[1], extra)
        else:
            req.answer(status, json.dumps(answer).encode(), "application/json", extra)

    def _answer(self, method: str, path: str, template: str | None, allowed: bool, name: str,
                params: dict, headers: dict, body: Any, undecodable: str | None,
                request_id: str) -> tuple[int, Any, dict]:
        if self.spec is not None and template is None:
            self._error(f"{method} {path}: no such path in the Messaging API")
            return 404, {"message": "Not found"}, {}
        if self.spec is not None and not allowed:
            self._error(f"{method} {path}: the Messaging API has no {method} {template}")
            return 405, {"message": "Method Not Allowed"}, {}
        if headers.get("authorization") != f"Bearer {self.channel_access_token}":
            return 401, {"message": AUTH_FAILED}, {}
        try:
            schema = self._check_request(method, template, name, headers, body, undecodable)
            self._check_rules(name, schema, self._problems(name, headers, body))
            with self._cond:
                queued = self._failures.get(name)
                if queued:
                    return queued.popleft()
            handler = getattr(self, f"_do_{name}", None)
            if handler is None:
                return 200, {}, {}
            return handler(params=params, headers=headers, body=body, request_id=request_id)
        except _Answer as answer:
            return answer.status, answer.body, answer.headers

    def _check_request(self, method: str, template: str | None, name: str, headers: dict,
                       body: Any, undecodable: str | None) -> list[tuple[str, str]]:
        """Record spec errors for the request and return them as [(property, message)]; raise
        _Answer where LINE would refuse the request as a whole."""
        if undecodable is not None:
            self._error(f"{name}: request body is not JSON: {undecodable}")
            raise _Answer(400, {"message": "The request body could not be parsed as JSON"})
        op = (self.spec or {}).get("paths", {}).get(template, {}).get(method.lower())
        if op is None:
            return []
        for param in op.get("parameters", []):
            value = headers.get(param["name"].lower()) if param.get("in") == "header" else None
            if value is not None and param.get("schema", {}).get("format") == "uuid" \
                    and not _UUID_RE.fullmatch(value):
                self._error(f"{name}: header {param['name']}={value!r} is not a UUID")
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return []
        if body is None:
            if op["requestBody"].get("required"):
                self._error(f"{name}: <body>: the request body is required")
                raise _bad_request([("<body>", "must be specified")])
            return []
        if not headers.get("content-type", "").startswith("application/json"):
            self._error(f"{name}: Content-Type {headers.get('content-type')!r} is not JSON")
            raise _Answer(415, {"message": "Unsupported Media Type"})
        pointer = "/paths/{}/{}/requestBody/content/application~1json/schema".format(
            template.replace("~", "~0").replace("/", "~1"), method.lower())
        problems = _schema_problems(self.spec_path, pointer, body)
        for where, message in problems:
            self._error(f"{name}: {where}: {message}")
        return problems

    def _check_rules(self, name: str, schema: list[tuple[str, str]],
                     rules: list[tuple[str, str]]) -> None:
        """Answer 400 with LINE's details for the request's problems: those of LINE's own rules
        (in LINE's words; recorded as spec errors unless the schema check already spoke about
        the same property), then the schema's about other properties."""
        said = {where for where, _ in schema}
        for where, message in rules:
            if where not in said:
                self._error(f"{name}: {where}: {message}")
        ruled = {where for where, _ in rules}
        problems = rules + [(w, m) for w, m in schema if w not in ruled]
        if problems:
            raise _bad_request(problems)

    def _problems(self, name: str, headers: dict, body: Any) -> list[tuple[str, str]]:
        """What LINE refuses in a reply, push or loading request: [(property, message)]."""
        if name not in ("reply", "push", "loading"):
            return []
        body = body if isinstance(body, dict) else {}
        if name == "loading":
            problems = [] if isinstance(body.get("chatId"), str) and body["chatId"] else \
                [("chatId", "must be specified")]
            seconds = body.get("loadingSeconds", 20)
            if isinstance(seconds, bool) or not isinstance(seconds, int) or \
                    not 5 <= seconds <= 60 or seconds % 5:
                problems.append(("loadingSeconds", "must be a multiple of 5 between 5 and 60"))
            return problems
        if name == "push":
            key = headers.get("x-line-retry-key")
            if key is not None and not _UUID_RE.fullmatch(key):
                raise _Answer(400, {"message": "The value for the 'X-Line-Retry-Key' header "
                                               "is invalid"})
        field = "replyToken" if name == "reply" else "to"
        problems = [] if isinstance(body.get(field), str) and body[field] else \
            [(field, "must be specified")]
        return problems + self._message_problems(body)

    def _message_problems(self, body: dict) -> list[tuple[str, str]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
            return [("messages", f"Size must be between 1 and {MAX_MESSAGES}")]
        known = MESSAGE_TYPES
        if self.spec is not None:
            known = frozenset(self.spec["components"]["schemas"]["Message"]["discriminator"]
                              ["mapping"])
        problems = []
        for i, message in enumerate(messages):
            kind = message.get("type") if isinstance(message, dict) else None
            if kind not in known:
                problems.append((f"messages[{i}].type",
                                 f"must be one of the following values: {sorted(known)}"))
            elif kind in ("text", "textV2"):
                text = message.get("text")
                if not isinstance(text, str) or not text:
                    problems.append((f"messages[{i}].text", "may not be empty"))
                elif utf16_len(text) > MAX_TEXT:
                    problems.append((f"messages[{i}].text",
                                     f"Length must be between 0 and {MAX_TEXT}"))
        return problems

    def _sent(self, messages: list[dict]) -> list[dict]:
        sent = []
        for message in messages:
            item = {"id": str(next(self._message_ids))}
            if message.get("type") in QUOTABLE:
                item["quoteToken"] = secrets.token_urlsafe(96)[:128]
            sent.append(item)
        return sent

    # ----------------------------------------------------------- the operations
    def _do_reply(self, body: dict, **_: Any) -> tuple[int, Any, dict]:
        token = body["replyToken"]
        with self._cond:
            if token not in self._reply_tokens or token in self._spent_tokens:
                return 400, {"message": "Invalid reply token"}, {}
            self._spent_tokens.add(token)
            sent = self._sent(body["messages"])
        return 200, {"sentMessages": sent}, {}

    def _do_push(self, body: dict, headers: dict, request_id: str,
                 **_: Any) -> tuple[int, Any, dict]:
        key = headers.get("x-line-retry-key", "").lower() or None
        with self._cond:
            if key in self._retry_keys:
                accepted, sent = self._retry_keys[key]
                return 409, {"message": "The retry key is already accepted",
                             "sentMessages": copy.deepcopy(sent)}, \
                    {"x-line-accepted-request-id": accepted}
            sent = self._sent(body["messages"])
            if key is not None:
                self._retry_keys[key] = (request_id, copy.deepcopy(sent))
        return 200, {"sentMessages": sent}, {}

    def _do_loading(self, **_: Any) -> tuple[int, Any, dict]:
        return 202, {}, {}

    def _do_mark_as_read(self, body: dict, **_: Any) -> tuple[int, Any, dict]:
        if not body.get("markAsReadToken"):
            return 400, {"message": "Invalid markAsReadToken"}, {}
        return 200, {}, {}

    def _do_profile(self, params: dict, **_: Any) -> tuple[int, Any, dict]:
        with self._cond:
            profile = self._profiles.get(params["userId"])
        return (200, dict(profile), {}) if profile else (404, {"message": "Not found"}, {})

    def _do_member_profile(self, params: dict, **_: Any) -> tuple[int, Any, dict]:
        with self._cond:
            profile = self._profiles.get(params["userId"])
        if not profile:
            return 404, {"message": "Not found"}, {}
        return 200, {k: v for k, v in profile.items() if k != "language"}, {}

    def _do_content(self, params: dict, **_: Any) -> tuple[int, Any, dict]:
        with self._cond:
            found = self._contents.get(params["messageId"])
        return (200, found, {}) if found else (404, {"message": "Not found"}, {})

    def _do_transcoding(self, params: dict, **_: Any) -> tuple[int, Any, dict]:
        with self._cond:
            found = params["messageId"] in self._contents
        return (200, {"status": "succeeded"}, {}) if found else (404, {"message": "Not found"}, {})

    def _do_bot_info(self, **_: Any) -> tuple[int, Any, dict]:
        return 200, {"userId": self.bot_user_id, "basicId": "@sealion", "displayName": "SEA-LION",
                     "chatMode": "bot", "markAsReadMode": "auto"}, {}
