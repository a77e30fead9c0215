"""Signed but hostile webhook bodies never cost a 5xx (issue 12, hole 2).

Hypothesis mutates the recorded payloads of tests/data/<platform>/ (a string where an object
belongs, a list of strings as `entry`, huge or negative numbers, numeric ids, a deleted key,
JSON nested far past the recursion limit, ...), signs each body as the platform would, and posts
it to the real app (create_app, its own Redis). Every answer must be 200 or 400. 240 bodies a
platform, 720 in all.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli.embedded_redis import EmbeddedRedis
from bot.kernel.settings import Settings
from bot.web.app import create_app

# The app under fuzzing accepts into a real redis-server of its own.
pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
EXAMPLES = 240
TELEGRAM_SECRET = "fuzz-telegram-secret-0123456789"
LINE_SECRET = "fuzz-line-channel-secret"
WHATSAPP_SECRET = "fuzz-whatsapp-app-secret"


class Deep:
    """Stands for JSON nested `depth` lists deep (json.dumps itself could not write it)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


SPECIAL: list[Any] = [
    None, True, False, 0, -1, 2**31, -(2**63) - 1, 2**64, 10**40, 10**400, 1.5, -1e308, 1e308,
    "", "x", "123", "-5", "1e9", "9" * 30, "\u0000", "\ud800".encode("utf-8", "surrogatepass"),
    [], {}, ["a", "b"], [1, 2], [None], [{}], {"a": 1}, {"id": 1}, {"type": 7},
    Deep(40), Deep(5000),
]
LEAVES = st.one_of(
    # A fresh copy each draw: `mutate` edits what it inserted (a later step may add a key to it
    # or put it inside itself), and a shared SPECIAL list or dict would carry that edit into
    # later examples (Hypothesis then sees a strategy that changes: FlakyStrategyDefinition) or
    # become self-referential (a RecursionError in `paths`).
    st.sampled_from(SPECIAL).map(copy.deepcopy),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=3),
)


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def mutate(document: Any, path: tuple, operation: str, value: Any) -> Any:
    if not path:
        return value if operation != "wrap" else [document]
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "wrap":
        parent[last] = [parent[last]]
    elif operation == "extra" and isinstance(parent[last], dict):
        parent[last]["zz_extra"] = value
    else:
        parent[last] = value
    return document


def encode(document: Any) -> bytes:
    """JSON with each Deep placeholder written out as nested lists."""
    deep: list[Deep] = []

    def default(value: Any) -> Any:
        if isinstance(value, Deep):
            deep.append(value)
            return f"__deep_{len(deep) - 1}__"
        if isinstance(value, bytes):
            return value.decode("utf-8", "surrogatepass")
        raise TypeError(type(value))

    text = json.dumps(document, default=default)
    for index, item in enumerate(deep):
        text = text.replace(f'"__deep_{index}__"', "[" * item.depth + "]" * item.depth)
    return text.encode("utf-8", "surrogatepass")


def sign(platform: str, body: bytes) -> dict[str, str]:
    if platform == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    if platform == "line":
        digest = hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()
        return {"X-Line-Signature": base64.b64encode(digest).decode()}
    digest_hex = hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest_hex}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("fuzz-redis"), persist=False).start()
    app = create_app(Settings(
        _env_file=None, environment="test", redis_url=server.url,
        data_dir=str(tmp_path_factory.mktemp("data")),
        database_url=f"sqlite:///{tmp_path_factory.mktemp('log')}/log.db",
        telegram_bot_token="7000001:fuzz-token", telegram_webhook_secret=TELEGRAM_SECRET,
        telegram_api_base_url="http://127.0.0.1:9",
        line_channel_secret=LINE_SECRET, line_channel_access_token="fuzz-line-token",
        whatsapp_access_token="fuzz-wa-token", whatsapp_app_secret=WHATSAPP_SECRET,
        whatsapp_phone_number_id="106540352242922"))
    yield TestClient(app, raise_server_exceptions=False)  # a crash must show as a 500
    app.state.redis.close()
    server.stop()


@pytest.mark.parametrize("platform", ["telegram", "line", "whatsapp"])
def test_mutated_signed_payloads_never_get_a_5xx(client, platform):
    recorded = {path.name: json.loads(path.read_text())
                for path in sorted((DATA / platform).glob("*.json"))}
    answers: Counter[int] = Counter()
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def post_one(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(recorded)))
        document = copy.deepcopy(recorded[name])
        steps = []
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(list(paths(document))))
            operation = data.draw(st.sampled_from(["replace", "replace", "delete", "wrap",
                                                   "extra"]))
            if operation == "delete" and not path:
                operation = "replace"
            value = data.draw(LEAVES)
            document = mutate(document, path, operation, value)
            steps.append((path, operation))
            if not isinstance(document, dict | list):
                break
        body = encode(document)
        response = client.post(f"/webhooks/{platform}", content=body,
                               headers={"Content-Type": "application/json",
                                        **sign(platform, body)})
        answers[response.status_code] += 1
        if response.status_code not in (200, 400):
            failures.append(f"{name} {steps}: {response.status_code} {response.text[:200]}")

    post_one()
    assert not failures, "\n".join(failures[:10])
    assert sum(answers.values()) >= EXAMPLES
    # Both sides were exercised: bodies still accepted, and bodies refused as malformed.
    assert answers[200] and answers[400], answers


@pytest.mark.parametrize("platform", ["telegram", "line", "whatsapp"])
def test_nesting_past_the_recursion_limit_is_a_400(client, platform):
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(f"/webhooks/{platform}", content=body,
                           headers={"Content-Type": "application/json", **sign(platform, body)})
    assert response.status_code == 400, response.text


def _set(document: dict, path: tuple, value: Any) -> dict:
    document = copy.deepcopy(document)
    return mutate(document, path, "replace", value)


#: The review's own examples, each a 500 before: (platform, fixture, path, value).
NAMED = [
    ("whatsapp", "text", ("entry",), ["a", "b"]),  # a list of strings as `entry`
    ("whatsapp", "text", ("entry", 0, "changes", 0, "value"), "x"),  # a string for an object
    ("whatsapp", "text", ("entry", 0, "changes", 0, "value", "messages", 0, "timestamp"),
     "yesterday"),  # a non-numeric timestamp
    ("whatsapp", "text", ("entry", 0, "changes", 0, "value", "messages", 0, "id"), 12345),
    ("line", "text", ("events", 0, "timestamp"), "soon"),
    ("line", "text", ("events", 0, "message"), "hello"),
    ("line", "text", ("events", 0, "webhookEventId"), 7),  # a numeric event id
    ("line", "audio", ("events", 0, "message", "duration"), 10**400),  # no float holds it
    ("telegram", "text_private", ("message", "chat"), "x"),
    ("telegram", "text_private", ("message", "date"), 10**20),
    ("telegram", "text_private", ("message", "from", "id"), "not a number"),
    ("telegram", "text_private", ("message", "sticker"), "x"),  # a field we never read
]


@pytest.mark.parametrize("platform,name,path,value", NAMED)
def test_the_reviews_examples_are_400s(client, platform, name, path, value):
    document = _set(json.loads((DATA / platform / f"{name}.json").read_text()), path, value)
    body = encode(document)
    response = client.post(f"/webhooks/{platform}", content=body,
                           headers={"Content-Type": "application/json", **sign(platform, body)})
    assert response.status_code == 400, response.text
