"""Language codes from platforms are mapped onto the languages the bot serves, else ignored
(issue 18, item 12).

The sender chooses Telegram's `from.language_code` (and a browser its Accept-Language, a LINE
user their profile's language). Taken as it came, the code was stored as the conversation's
reply language and became a Prometheus label: an unbounded set of series, and text of the
sender's in every scrape. Here real payloads go through the real parsers, whole turns run on
the suite's Redis, and the metrics are read back as Prometheus reads them.
"""

from __future__ import annotations

import json

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.local import ConsoleAdapter, LocalMessage
from adapters.telegram import TelegramAdapter
from bot.kernel.languages import SUPPORTED_LANGUAGES
from bot.kernel.settings import Settings
from storage.keys import KeyBuilder
from storage.mailbox import LocalMailbox
from storage.metrics import RedisCollector
from tests.conftest import new_chat_id
from tests.helpers.turn_world import TurnWorld
from tests.helpers.updates import text_update
from tests.workers.doubles import RecordingAdapter

KNOWN = set(SUPPORTED_LANGUAGES)
#: Codes a sender may set, each with what it must become.
CODES = [
    ("id-ID", "id"), ("zh-hans", "zh"), ("zh-Hant-TW", "zh"), ("fil", "tl"), ("fil-PH", "tl"),
    ("EN-gb", "en"), ("ms_MY", "ms"), ("in", "id"), ("th", "th"), ("my-MM", "my"),
    ("pt-br", None), ("ja", None), ("tlh", None), ("qq-garbage", None), ("x" * 300, None),
    ("en\u202e", None), ('"}; drop', None), ("", None),
]
GARBAGE = "qq-garbage-label"


def _telegram() -> TelegramAdapter:
    settings = Settings(telegram_bot_token="7000001:abc", telegram_webhook_secret="s" * 24,
                        redis_url="redis://127.0.0.1:1/0")
    return TelegramAdapter(settings, username="sealion_test_bot")


def _telegram_message(code: str, text: str = "Apa khabar?"):
    update = text_update(new_chat_id(), text)
    update["message"]["from"]["language_code"] = code
    [message] = _telegram().parse(json.dumps(update).encode())
    return message


def _exported(client, metrics=None) -> dict[str, dict[tuple, float]]:
    """Prometheus' view of the metrics: family -> label set -> value (after `metrics`, the
    recording process's, flushed what it counted)."""
    if metrics is not None:
        metrics.flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client))
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _everything(client: redis.Redis) -> bytes:
    """Every key and value of the client's database, as bytes."""
    read = {b"string": lambda k: [client.get(k)], b"list": lambda k: client.lrange(k, 0, -1),
            b"hash": lambda k: [*client.hkeys(k), *client.hvals(k)],
            b"set": client.smembers, b"zset": lambda k: client.zrange(k, 0, -1)}
    parts: list[bytes] = []
    for key in client.scan_iter():
        parts += [key, *(v for v in read.get(client.type(key), lambda k: [])(key) if v)]
    return b"\n".join(parts)


@pytest.mark.parametrize(("code", "expected"), CODES,
                         ids=[ascii(code[:12]) for code, _ in CODES])
def test_telegram_language_codes_map_onto_the_served_languages(code, expected):
    assert _telegram_message(code).language_hint == expected


def test_local_chat_language_codes_are_bounded_too(redis_server):
    mailbox = LocalMailbox(redis.Redis.from_url(redis_server.url), upload_ttl=60, outbox_ttl=60)
    adapter = ConsoleAdapter(Settings(_env_file=None), mailbox)
    for code, expected in CODES:
        body = LocalMessage(chat="siti", text="hi", language_hint=code[:35] or None)
        [message] = adapter.parse(body.model_dump_json().encode())
        assert message.language_hint == (expected if len(code) <= 35 else None), code


@pytest.fixture()
def world(tmp_path):
    world = TurnWorld(None, tmp_path)
    yield world
    world.close()


def test_an_unknown_code_never_reaches_storage_or_metrics(world):
    # Nothing in "👍" tells a language, so the hint would decide the reply language.
    message = _telegram_message(GARBAGE, "👍")
    world.accept(message)
    raw = _everything(world.client)
    assert message.key.chat_id.encode() in raw  # the message is stored ...
    assert GARBAGE.encode() not in raw  # ... without the code
    world.turn(world.service("Hi!"), message.key)
    assert world.adapter.sent == ["Hi!"]
    assert world.store.language(message.key) == "en"  # the default, not the sender's code
    languages = _exported(world.client, world.metrics)["sealion_languages_total"]
    assert languages == {(("language", "en"),): 1.0}


class LineProfile(RecordingAdapter):
    """A platform whose messages carry no language, and whose profile says `profile`."""

    def __init__(self, settings: Settings, profile: str) -> None:
        super().__init__(settings)
        self.profile = profile

    async def language_hint(self, key) -> str | None:
        return self.profile


@pytest.mark.parametrize(("profile", "expected"), [(GARBAGE, "en"), ("zh-Hant", "zh")])
def test_a_profile_language_is_bounded_as_well(tmp_path, profile, expected):
    world = TurnWorld(None, tmp_path,
                      adapter=LineProfile(Settings(_env_file=None), profile))
    try:
        key = world.arrive("👍", hint=None)
        world.turn(world.service("Hi!"), key)
        assert world.store.language(key) == expected
        languages = _exported(world.client, world.metrics)["sealion_languages_total"]
        assert languages == {(("language", expected),): 1.0}
    finally:
        world.close()


def test_the_language_label_takes_known_values_only(world):
    world.metrics.inc("languages", language="th")
    world.metrics.inc("languages", language=GARBAGE)
    world.metrics.inc("languages", language="<script>")
    # A label set written before the label was bounded is exported under "other" as well.
    world.client.hincrbyfloat(KeyBuilder().metric("counter", "languages"),
                              json.dumps({"language": "legacy-code"}), 2)
    languages = _exported(world.client, world.metrics)["sealion_languages_total"]
    assert languages == {(("language", "th"),): 1.0, (("language", "other"),): 4.0}
    assert {value for labels in languages for _, value in labels} <= KNOWN | {"other"}
