"""A loopback stand-in for the WhatsApp Cloud API (Graph API v23.0) for tests.

Our real code (plain httpx with ``WHATSAPP_API_BASE_URL=f"{stand_in.base_url}/v23.0"``) talks
HTTP to this server exactly as it would to ``https://graph.facebook.com/v23.0``:

* ``POST /v23.0/<phone-number-id>/messages`` sends a message (call name ``"send"``) and answers
  ``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``
  (to a business-scoped user id in ``recipient``, an extension newer than the spec:
  ``contacts: [{"input", "user_id"}]``, see ``BSUID_EXTENSION``),
  or marks a message as read, optionally showing the typing indicator (a body with ``status``;
  call name ``"read"``) and answers ``{"success": true}``.
* ``GET /v23.0/<media-id>`` (``"media_info"``) answers the media's URL, MIME type, SHA-256 and
  size; the URL (``"media_download"``) serves the bytes registered with :meth:`add_media` to the
  same bearer token, for :attr:`WhatsAppStandIn.url_ttl` seconds (five minutes, as Meta's).
* Failures are Graph errors, ``{"error": {"message", "type", "code", "error_data":
  {"messaging_product", "details"}, "fbtrace_id"}}``: 401 (code 104 without a token, 190 with a
  wrong one, as the spec's ``Unauthorized`` examples), 400 code 100 for unknown objects and
  invalid parameters, and whatever :meth:`fail_next` queues (131047 outside the 24-hour window,
  130429 throughput, 131056 pair rate limit, ...). Meta answers those three with HTTP 400.

Every call is recorded (:attr:`WhatsAppStandIn.calls`, once answered; :meth:`in_flight` counts
those still held by :meth:`set_delay`) and checked against the official OpenAPI spec
(``tests/specs/whatsapp/business-messaging-api_v23.0.yaml``, loaded once per process): a send
body against ``Message`` (the request schema of the messages path) and ``MessageRequest`` (which
adds ``text.body`` required and at most 4096 characters), a read body against
``MarkMessageRequestPayload`` plus the spec's "Send typing indicator and read receipt" example
(``status`` is ``"read"``, ``typing_indicator`` is ``{"type": "text"}``). Violations, empty texts
and paths the stand-in does not serve land in :attr:`WhatsAppStandIn.spec_errors`, which tests
assert stays empty. :func:`validate_webhook` checks webhook bodies against ``WebhookPayload``.

The spec file merges several per-endpoint specs, and two of its habits would fail every
valid body under plain JSON Schema, so the schemas are read as their authors meant:

* Colliding schema names were renamed (``TextMessage_1``, ``TextMessage_2``, ...) without
  rewriting the references inside each part: the webhook's ``IncomingMessage`` points at the
  *outgoing* ``TextMessage``. A reference is re-pointed to the variant of that name defined
  nearest to the referring schema (in the same part); with that, all 13 of the spec's
  ``messages`` webhook examples validate.
* ``allOf: [BaseMessageProperties, {additionalProperties: false, ...}]`` forbids the base's own
  fields; such ``allOf`` lists are merged into one object first. A ``discriminator`` picks the
  schema its mapping names for the value's ``type``, as OpenAPI defines, rather than ``oneOf``.
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
import time
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from jsonschema import Draft202012Validator

from tests.helpers.specs import WHATSAPP_CLOUD_API
from tests.helpers.standin import LoopbackHandler, LoopbackStandIn

DEFAULT_SPEC = WHATSAPP_CLOUD_API
VERSION = "v23.0"
MAX_TEXT = 4096
URL_TTL = 300.0  # "The URL is only valid for 5 minutes."
NAMES = ("send", "read", "media_info", "media_download", "phone_number")
#: Meta's titles and details for the codes tests simulate (Cloud API error-codes reference).
KNOWN_ERRORS = {
    4: ("Application request limit reached",
        "The app has reached its API call rate limit."),
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled "
          "parameters."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131026: ("Message undeliverable", "Message failed to send because the recipient is not a "
             "WhatsApp user or cannot receive it."),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours have "
             "passed since the customer last replied to this number."),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions on "
             "how many messages can be sent from this phone number."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this phone "
             "number to the same phone number in a short period of time."),
}
_REF = "#/components/schemas/"
_SUFFIX = re.compile(r"_\d+$")


@dataclass
class Call:
    name: str  # "send", "read", "media_info", "media_download", or the path of anything else
    path: str  # URL path as requested, without the query
    headers: dict  # request headers, names in lower case
    body: Any  # the decoded JSON body; None without one (the raw text if it is not JSON)
    at: float  # time.monotonic() when the request arrived
    status: int  # HTTP status we answered
    answer: Any = None  # the JSON we answered (a sent message's id: answer["messages"][0]["id"])


# ------------------------------------------------------------------------------ the spec
class _Spec:
    """Validators for the request bodies and the webhook payload, built from the spec once."""

    def __init__(self, document: dict) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self._order = {name: i for i, name in enumerate(self.schemas)}
        self._variants: dict[str, list[str]] = collections.defaultdict(list)
        for name in self.schemas:
            self._variants[_SUFFIX.sub("", name)].append(name)
        self.send = [self.validator("Message"), self.validator("MessageRequest")]
        self.read = self.validator("MarkMessageRequestPayload")
        self.webhook = self.validator("WebhookPayload")
        examples = document["paths"]["/whatsapp/webhooks"]["post"]["requestBody"]["content"]
        self.webhook_examples = {name: example["value"] for name, example
                                 in examples["application/json"]["examples"].items()}
        examples = document["paths"]["/{Version}/{Phone-Number-ID}/messages"]["post"]
        self.message_examples = {name: example["value"] for name, example in
                                 examples["requestBody"]["content"]["application/json"]
                                 ["examples"].items()}

    def _local(self, name: str, near: str) -> str:
        """The variant of ``name`` (``X``, ``X_1``, ...) defined nearest to schema ``near``."""
        variants = self._variants.get(_SUFFIX.sub("", name)) or [name]
        return min(variants, key=lambda v: abs(self._order[v] - self._order[near]))

    def validator(self, root: str) -> Draft202012Validator:
        closure: dict[str, Any] = {}
        todo = [root]

        def fix(node: Any, near: str) -> Any:
            if isinstance(node, list):
                return [fix(item, near) for item in node]
            if not isinstance(node, dict):
                return node
            node = {key: fix(value, near) for key, value in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF):
                node["$ref"] = _REF + want(ref[len(_REF):], near)
            discriminator = node.pop("discriminator", None)
            if discriminator and discriminator.get("mapping") and "oneOf" in node:
                prop = discriminator["propertyName"]
                mapping = {value: want(target[len(_REF):], near)
                           for value, target in discriminator["mapping"].items()}
                del node["oneOf"]
                node["required"] = list(dict.fromkeys([*node.get("required", []), prop]))
                node.setdefault("properties", {})[prop] = {"enum": list(mapping)}
                node["allOf"] = [*node.get("allOf", []), *(
                    {"if": {"properties": {prop: {"const": value}}, "required": [prop]},
                     "then": {"$ref": _REF + target}} for value, target in mapping.items())]
            return node

        def want(name: str, near: str) -> str:
            name = self._local(name, near)
            if name not in closure and name not in todo:
                todo.append(name)
            return name

        while todo:
            name = todo.pop()
            closure[name] = fix(copy.deepcopy(self.schemas[name]), name)
        for _ in range(3):  # merged parts may hold allOf lists of their own
            closure = {name: _merge_all_of(schema, closure) for name, schema in closure.items()}
        return Draft202012Validator({"$ref": _REF + root, "components": {"schemas": closure}})


def _merge_all_of(node: Any, closure: dict[str, Any]) -> Any:
    """Merge ``allOf`` lists of plain object schemas into one object schema, so that
    ``additionalProperties: false`` in one part allows the properties of the others."""
    if isinstance(node, list):
        return [_merge_all_of(item, closure) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _merge_all_of(value, closure) for key, value in node.items()}
    parts = node.get("allOf")
    if not parts:
        return node
    resolved = []
    for part in parts:
        while set(part) == {"$ref"}:
            part = closure[part["$ref"][len(_REF):]]
        if {"oneOf", "anyOf", "allOf", "not", "if", "$ref"} & set(part):
            return node  # not a plain object schema: leave the allOf to the validator
        resolved.append(part)
    merged = {key: value for key, value in node.items() if key != "allOf"}
    properties = dict(merged.get("properties", {}))
    required = list(merged.get("required", []))
    closed = merged.get("additionalProperties") is False
    for part in resolved:
        for key, value in part.get("properties", {}).items():
            properties[key] = {"allOf": [properties[key], value]} if key in properties else value
        required += [key for key in part.get("required", []) if key not in required]
        closed = closed or part.get("additionalProperties") is False
        for key, value in part.items():
            if key not in ("properties", "required", "additionalProperties"):
                merged.setdefault(key, value)
    merged["properties"] = properties
    if required:
        merged["required"] = required
    if closed:
        merged["additionalProperties"] = False
    return merged


@cache
def _load_spec(path: Path) -> _Spec | None:
    if not path.exists():
        warnings.warn(f"WhatsApp Cloud API spec not found at {path}; requests go unchecked", stacklevel=2)
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the file is 1 MB: C is 20x faster
    with path.open(encoding="utf-8") as stream:
        return _Spec(yaml.load(stream, Loader=loader))  # noqa: S506 - a safe loader


def _leaves(error: Any) -> list[Any]:
    """For a failed oneOf/anyOf, the failures of the alternative that came closest (fewest
    failures, then the deepest ones): the body most likely meant that one."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list] = collections.defaultdict(list)
    for sub in error.context:
        branches[sub.relative_schema_path[0]].append(sub)
    closest = min(branches.values(),
                  key=lambda subs: (len(subs), -max(len(e.absolute_path) for e in subs)))
    return [leaf for sub in closest for leaf in _leaves(sub)]


def _messages(validator: Draft202012Validator, body: Any) -> list[str]:
    out = []
    leaves = [leaf for error in validator.iter_errors(body) for leaf in _leaves(error)]
    for error in sorted(leaves, key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path) or "body"
        if error.validator in ("maxLength", "minLength") and isinstance(error.instance, str):
            limit = "at most" if error.validator == "maxLength" else "at least"
            out.append(f"{where} is {len(error.instance)} characters, the spec allows "
                       f"{limit} {error.validator_value}")
        else:
            message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
            out.append(f"{where}: {message}")
    return out


def validate_webhook(payload: Any, spec_path: Path | None = DEFAULT_SPEC) -> list[str]:
    """Problems with a webhook body measured against the spec's ``WebhookPayload`` ([] if fine,
    or if the spec is not available)."""
    spec = _load_spec(Path(spec_path).resolve()) if spec_path is not None else None
    return _messages(spec.webhook, payload) if spec is not None else []


def webhook_signature(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header Meta sends with a webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def graph_error(code: int, message: str | None = None, details: str | None = None,
                error_type: str = "OAuthException", **extra: Any) -> dict:
    """A Graph API error body; WhatsApp codes' messages read ``"(#<code>) <title>"``."""
    title, known_details = KNOWN_ERRORS.get(code, ("Invalid parameter", None))
    message = title if message is None else message
    if code not in (104, 190) and not message.startswith("(#"):
        message = f"(#{code}) {message}"
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    error["error_data"] = {"messaging_product": "whatsapp",
                           "details": details or known_details or message}
    error.update(extra)
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


# ---------------------------------------------------------------------------- the server
class _Handler(LoopbackHandler):
    do_DELETE = do_PUT = LoopbackHandler.do_GET


class WhatsAppStandIn(LoopbackStandIn):
    """The fake Cloud API. ``start()`` it, point the service at ``f"{base_url}/v23.0"``, then
    inspect ``calls`` and ``spec_errors``."""

    service = "whatsapp"
    handler = _Handler

    def __init__(self, access_token: str = "wa-test-token",
                 phone_number_id: str = "106540352242922", spec_path: Path | None = None) -> None:
        super().__init__()
        self.access_token = access_token
        self.phone_number_id = str(phone_number_id)
        self.spec = _load_spec(Path(spec_path).resolve()) if spec_path is not None else None
        self.url_ttl = URL_TTL
        self.calls: list[Call] = []
        self._media: dict[str, dict] = {}
        self._urls: dict[str, tuple[str, float]] = {}  # download token -> (media id, issued at)
        self._serial = itertools.count(1)

    def reset(self) -> None:
        """Forget calls, spec errors, queued failures and delays; restore ``url_ttl``. Media
        registered with :meth:`add_media` (and URLs already issued) stay."""
        with self._cond:
            super().reset()
            self.url_ttl = URL_TTL

    # ------------------------------------------------------------- test controls
    def add_media(self, media_id: str, content: bytes, mime_type: str = "image/jpeg",
                  url: str | None = None) -> None:
        """Serve ``content`` as media ``media_id``; with ``url``, the media info names that URL
        instead of this server's download URL (a CDN, or a hostile answer)."""
        with self._cond:
            self._media[str(media_id)] = {
                "content": content, "mime_type": mime_type, "url": url,
                "sha256": hashlib.sha256(content).hexdigest(), "file_size": len(content)}

    def fail_next(self, name: str, status: int = 400, code: int = 131047,
                  message: str | None = None, times: int = 1, details: str | None = None) -> None:
        """Answer the next ``times`` calls named ``name`` with a Graph error (after auth and the
        spec check). ``message`` defaults to Meta's title for ``code`` ("Re-engagement message"
        for 131047) and reads "(#<code>) <message>"; ``details`` to Meta's details for it."""
        with self._cond:
            for _ in range(times):
                self._failures[name].append((status, code, message, details))

    # -------------------------------------------------------------- inspection
    def sent_texts(self, to: str | None = None) -> list[str]:
        """Bodies of the text messages Meta accepted (status 200), in order, as sent, and of
        the interactive ones (an answer carrying its 👍/👎 reply buttons); `to` a phone number
        or a business-scoped user id (`recipient`)."""
        return [_shown(c.body) for c in self.sent(to)]

    def sent(self, to: str | None = None) -> list[Call]:
        """The text and interactive messages Meta accepted (status 200), in order."""
        return [c for c in self.calls_to("send")
                if c.status == 200 and _shown(c.body) is not None
                and (to is None or str(c.body.get("to") or c.body.get("recipient")) == str(to))]

    # ------------------------------------------------------------------ serving
    def _handle(self, req: LoopbackHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(req.path)
        path = unquote(url.path)
        query = dict(parse_qsl(url.query))
        headers = {k.lower(): v for k, v in req.headers.items()}
        raw = req.read_body()
        body: Any = None
        status, answer = None, None
        if raw:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                body = raw.decode("utf-8", "replace")
                self._error(f"{req.command} {path}: body is not JSON: {exc}")
                status, answer = 400, graph_error(100, "Invalid parameter",
                                                  "The request body is not valid JSON.")
        name, target = self._route(req.command, path, body)
        refused = (status, answer) if status is not None else None
        status, answer = self._serve(
            name, arrived,
            lambda: refused or self._answer(name, target, path, headers, body, query),
            lambda: (500, graph_error(2, "Service temporarily unavailable",
                                      error_type="OAuthException")),
            lambda result: Call(name, path, headers, body, arrived, result[0],
                                result[1] if isinstance(result[1], dict) else None))
        extra: dict[str, str] = {}
        if status == 401:
            extra["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" ' \
                                        f'"{answer["error"]["message"]}"'
        if isinstance(answer, tuple):  # media bytes
            req.answer(status, answer[0], answer[1], extra)
        else:
            req.answer(status, json.dumps(answer, ensure_ascii=False).encode(), headers=extra)

    def _route(self, method: str, path: str, body: Any) -> tuple[str, str]:
        """The call's name and the object id it is about ("" when none)."""
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[0] == VERSION and parts[2] == "messages":
            read = isinstance(body, dict) and "status" in body
            return ("read" if read else "send"), parts[1]
        if method == "GET" and len(parts) == 2 and parts[0] == VERSION \
                and parts[1] == self.phone_number_id:
            return "phone_number", parts[1]
        if method == "GET" and len(parts) == 2 and parts[0] == VERSION and parts[1]:
            return "media_info", parts[1]
        if method == "GET" and len(parts) == 2 and parts[0] == "media-download":
            return "media_download", parts[1]
        return path, ""

    def _answer(self, name: str, target: str, path: str, headers: dict, body: Any,
                query: dict) -> tuple[int, Any]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if not token.strip():
            return 401, graph_error(104, "An access token is required to request this resource")
        if scheme.lower() != "bearer" or token.strip() != self.access_token:
            return 401, graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        if name not in NAMES:
            self._error(f"{path}: not an endpoint the WhatsApp stand-in serves (POST /{VERSION}"
                        f"/<phone-number-id>/messages, GET /{VERSION}/<media-id>, media URLs)")
            return 404, graph_error(
                100, f"Unknown path components: {path}", error_type="GraphMethodException")
        if name in ("send", "read") and target != self.phone_number_id:
            return 400, _unknown_object("post", target)
        if name == "send":
            self._check_send(body)
        elif name == "read":
            self._check_read(body)
        with self._cond:
            queued = self._failures.get(name)
            failure = queued.popleft() if queued else None
        if failure is not None:
            status, code, message, details = failure
            return status, graph_error(code, message, details)
        if name == "phone_number":  # GET /{Phone-Number-ID}: the number's profile
            return 200, {"id": target, "display_phone_number": "+1 555-078-3881",
                         "verified_name": "SEA-LION Test", "quality_rating": "GREEN"}
        if name == "media_info":
            return self._media_info(target, query)
        if name == "media_download":
            return self._media_download(target, query)
        refused = _refusal(name, body)
        if refused:
            return 400, graph_error(100, *refused)
        if name == "read":
            return 200, {"success": True}
        if not body.get("to"):  # sent to a business-scoped user id (see BSUID_EXTENSION)
            recipient = str(body["recipient"])
            return 200, {"messaging_product": "whatsapp",
                         "contacts": [{"input": recipient, "user_id": recipient}],
                         "messages": [{"id": self._wamid(recipient)}]}
        to = str(body["to"])
        return 200, {"messaging_product": "whatsapp",
                     "contacts": [{"input": to, "wa_id": re.sub(r"\D", "", to) or to}],
                     "messages": [{"id": self._wamid(to)}]}

    def _check_send(self, body: Any) -> None:
        if self.spec is None:
            return
        problems: list[str] = []
        seen: set[str] = set()
        body = _bsuid_send(body, problems)
        for validator in self.spec.send:  # both schemas list the types: say it once
            for problem in _messages(validator, body):
                if problem.split(" is not one of ")[0] not in seen:
                    seen.add(problem.split(" is not one of ")[0])
                    problems.append(problem)
        text = body.get("text") if isinstance(body, dict) else None
        if isinstance(text, dict) and isinstance(text.get("body"), str) \
                and not text["body"].strip():
            problems.append("text.body is empty; Meta refuses an empty text")
        for problem in problems:
            self._error(f"send: {problem}")

    def _check_read(self, body: Any) -> None:
        if self.spec is None:
            return
        problems = _messages(self.spec.read, body)
        if body.get("status") != "read":
            problems.append(f"status: {body.get('status')!r} is not 'read'")
        indicator = body.get("typing_indicator")
        if indicator is not None and indicator != {"type": "text"}:
            problems.append(f"typing_indicator: {indicator!r} is not {{'type': 'text'}}")
        unknown = set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}
        problems += [f"{key}: not a field of a read receipt" for key in sorted(unknown)]
        for problem in problems:
            self._error(f"read: {problem}")

    def _media_info(self, media_id: str, query: dict) -> tuple[int, Any]:
        with self._cond:
            media = self._media.get(media_id)
        wanted = query.get("phone_number_id")
        if media is None or (wanted is not None and wanted != self.phone_number_id):
            return 400, _unknown_object("get", media_id)
        token = secrets.token_urlsafe(24)
        with self._cond:
            self._urls[token] = (media_id, time.monotonic())
        return 200, {"url": media["url"] or f"{self.base_url}/media-download/{media_id}"
                            f"?token={token}",
                     "mime_type": media["mime_type"], "sha256": media["sha256"],
                     "file_size": media["file_size"], "id": media_id,
                     "messaging_product": "whatsapp"}

    def _media_download(self, media_id: str, query: dict) -> tuple[int, Any]:
        with self._cond:
            issued = self._urls.get(query.get("token", ""))
            media = self._media.get(media_id)
        if (issued is None or issued[0] != media_id or media is None
                or time.monotonic() - issued[1] > self.url_ttl):
            return 404, graph_error(100, "The media URL has expired or does not exist",
                                    error_type="GraphMethodException")
        return 200, (media["content"], media["mime_type"])

    def _wamid(self, to: str) -> str:
        """A unique ID shaped like Meta's: base64 of the recipient and a 20-hex-digit key."""
        digits = re.sub(r"\D", "", to).encode() or b"0"
        key = f"{next(self._serial):04X}{secrets.token_hex(8).upper()}".encode()[:20]
        raw = b"\x1c\x18" + bytes([len(digits)]) + digits + b"\x15\x02\x00\x11\x18\x12" + key
        return "wamid." + base64.b64encode(raw + b"\x00").decode()


#: BSUID_EXTENSION: sending to a business-scoped user id. The vendored spec (v23.0, Nov 2025)
#: predates BSUIDs, so a send body with `recipient` instead of `to` is accepted as an extension
#: Meta documents since 2026: "a new top-level `recipient` property accepts a BSUID or parent
#: BSUID; `to` stays for phone numbers; if both are present, `to` takes precedence"
#: (developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids;
#: restated by docs.ycloud.com/reference/webhook-updates-bsuid and
#: docs.kapso.ai/docs/whatsapp/business-scoped-user-ids). The answer's contact then carries
#: `user_id` instead of `wa_id`. The rest of the body is still checked against the spec.
BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")


def _bsuid_send(body: Any, problems: list[str]) -> Any:
    """`body` as the spec would check it: a `recipient` (a BSUID) stands in for `to`."""
    if not isinstance(body, dict) or "recipient" not in body:
        return body
    recipient = body["recipient"]
    if not isinstance(recipient, str) or not BSUID.fullmatch(recipient):
        problems.append(f"recipient: {recipient!r} is not a business-scoped user id")
    if "to" in body:
        problems.append("recipient and to both given: Meta uses `to`; send one of them")
    checked = {k: v for k, v in body.items() if k != "recipient"}
    checked.setdefault("to", str(recipient))
    return checked


def _shown(body: Any) -> Any:
    """The text a sent message shows: a text's body, an interactive message's body; None for
    other messages (reactions, media, templates)."""
    if not isinstance(body, dict):
        return None
    kind = body.get("type", "text")
    if kind == "text" and isinstance(body.get("text"), dict):
        return body["text"].get("body", "")
    if kind == "interactive" and isinstance(body.get("interactive"), dict):
        return (body["interactive"].get("body") or {}).get("text", "")
    return None


def _unknown_object(method: str, object_id: str) -> dict:
    return graph_error(
        100, f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot "
        "be loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        error_type="GraphMethodException", error_subcode=33)


def _refusal(name: str, body: Any) -> tuple[str, str] | None:
    """Meta's message and details for a body it refuses with code 100, or None."""
    def required(param: str) -> tuple[str, str]:
        return f"The parameter {param} is required.", f"The parameter {param} is required."

    if not isinstance(body, dict) or body.get("messaging_product") is None:
        return required("messaging_product")
    product = body["messaging_product"]
    if product != "whatsapp":
        return "Invalid parameter", f'Param messaging_product must be one of {{WHATSAPP}} - ' \
                                    f'got "{product}".'
    if name == "read":
        if not body.get("message_id"):
            return required("message_id")
        if body.get("status") != "read":
            return "Invalid parameter", "Param status must be one of {READ}."
        indicator = body.get("typing_indicator")
        if indicator is not None and indicator != {"type": "text"}:
            return "Invalid parameter", "Param typing_indicator['type'] must be one of {TEXT}."
        return None
    if not body.get("to") and not body.get("recipient"):
        return required("to")
    if body.get("type", "text") == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) \
                or not text["body"].strip():
            return required("text['body']")
        if len(text["body"]) > MAX_TEXT:
            return "Invalid parameter", \
                f"Param text['body'] must be at most {MAX_TEXT} characters long."
    return None
