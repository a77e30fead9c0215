"""Typed, frozen models of the webhook payloads: the parts we read, checked before we read them.

    update = TelegramUpdate.read(body)   # PayloadError unless `body` has the shape we read
    update.raw                           # the decoded JSON, whole (hidden from repr)

Each platform's module (`telegram.py`, `line.py`, `whatsapp.py`) declares the fields its adapter
reads, with strict types (no "123" for 123, no 1.0 for a string) and the ranges our code relies on
(timestamps a datetime can hold, offsets that are not negative). Fields we do not read are kept
(`extra="allow"`) and never checked, so a platform adding fields or event types breaks nothing.
The LINE and WhatsApp adapters read their messages from these models; the Telegram adapter
checks the update here, then reads it with python-telegram-bot's types (from `raw`).
A body that fails here is answered 400 by the webhook: never a 500, whatever the signed sender
put in it (wrong types, huge numbers, JSON nested a thousand deep).

Exception tree: `adapters.base.PayloadError` only.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from adapters.base import PayloadError

#: Deeper JSON is refused: real payloads stay under a dozen levels, and recursive parsers
#: (json, python-telegram-bot) must never meet the interpreter's recursion limit.
MAX_DEPTH = 32

#: A Unix time in seconds that `datetime.fromtimestamp` can hold.
Seconds = Annotated[int, Field(ge=0, lt=2**35)]
#: A Unix time in milliseconds (LINE).
Milliseconds = Annotated[int, Field(ge=0, lt=2**45)]
#: A platform's numeric id (Telegram's fit in 64 bits, signed).
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]
#: A count or an offset into a text.
Count = Annotated[int, Field(ge=0, lt=2**31)]


class Payload(BaseModel):
    """A part of a payload: frozen, strict on the fields it names, tolerant of the others."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True, populate_by_name=True)


class Envelope(Payload):
    """A whole webhook body; `read` decodes, bounds and validates it, keeping the raw JSON."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def raw(self) -> dict[str, Any]:
        return self._raw

    @classmethod
    def read(cls, body: bytes) -> Self:
        data = load_json(body)
        if not isinstance(data, dict):
            raise PayloadError(f"not a {cls.__name__}: the body is not a JSON object")
        try:
            model = cls.model_validate(data)
        except ValidationError as exc:
            raise PayloadError(f"not a {cls.__name__}: {_where(exc)}") from None
        except RecursionError:
            raise PayloadError("JSON nested too deep") from None
        model._raw = data
        return model


def load_json(body: bytes) -> Any:
    """The decoded body; `PayloadError` for anything but JSON nested at most MAX_DEPTH deep."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise PayloadError("JSON nested too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError; over-long integers
        raise PayloadError(f"malformed JSON: {str(exc)[:120]}") from None
    if _depth_over(data, MAX_DEPTH):
        raise PayloadError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return data


def _depth_over(data: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def _where(exc: ValidationError) -> str:
    """Where the first problem is and what it is, without echoing the sender's values."""
    error = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in error["loc"]) or "(top)"
    return f"{location}: {error['msg']}"[:200]
