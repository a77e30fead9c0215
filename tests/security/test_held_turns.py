"""Text work that only serves a turn the abuse screen holds back is not done at all (issue 18,
item 1): a blocked or rate-limited sender's message is never run through language detection,
however it is written, and the turn's notice goes in the language the conversation already
had.

The turn service runs on the in-memory twin of Redis and a real SQLite log, with a recording
adapter and a scripted engine (tests/helpers/turn_world.py). A spy wrapped around
`bot.kernel.language.detect` records each text detection reads.
"""

from __future__ import annotations

import pytest

from bot.kernel import language
from bot.kernel.messages import Platform
from bot.kernel.texts import Text, text
from storage.abuse import BlockList
from tests.helpers.conversation_log import find_conversation
from tests.helpers.turn_world import TurnWorld

#: The shape that cost 6-15 s of one core per 2,000 characters before issue 18.
PATHOLOGICAL = "@." * 1000
THAI = "สวัสดีครับ ช่วยแนะนำร้านอาหารไทยอร่อยๆ แถวสยามหน่อยได้ไหมครับ"


@pytest.fixture()
def world(tmp_path):
    world = TurnWorld(None, tmp_path)
    yield world
    world.close()


@pytest.fixture()
def detected(monkeypatch) -> list[str]:
    """The texts `bot.kernel.language.detect` reads from now on."""
    texts: list[str] = []
    real_detect = language.detect

    def spy(message_text: str, **options):
        texts.append(message_text)
        return real_detect(message_text, **options)

    monkeypatch.setattr(language, "detect", spy)
    return texts


def test_a_blocked_senders_message_is_never_detected(world, detected):
    service = world.service("Selamat pagi juga!")
    key = world.arrive(PATHOLOGICAL, "Selamat pagi, apa khabar semua?")
    BlockList(world.client).block(Platform.TELEGRAM, key.user_id)
    world.turn(service, key)
    assert detected == []
    assert world.adapter.sent == []
    messages = world.log.thread(find_conversation(world.log, key).id).messages
    assert [m.guard_label for m in messages] == ["blocked"]  # one inbound row, no answer

    # The spy sees what is read: the same words from someone not held back are detected.
    other = world.arrive("Selamat pagi, apa khabar semua?")
    world.turn(service, other)
    assert detected == ["Selamat pagi, apa khabar semua?"]
    assert world.adapter.sent == ["Selamat pagi juga!"]


def test_a_rate_limited_turn_keeps_the_conversations_language(world, detected):
    service = world.service("Hello!", limit=1)
    key = world.arrive("Hello there, how are you today?")
    world.turn(service, key)
    assert world.adapter.sent == ["Hello!"]
    detected.clear()

    # Over the limit, in Thai: held back whole, so its text is not read, and the slow-down
    # notice is in the conversation's language (English), not the held message's.
    world.arrive(THAI, PATHOLOGICAL, chat=key.chat_id)
    world.turn(service, key)
    assert detected == []
    assert world.adapter.sent == ["Hello!", text(Text.RATE_LIMITED, "en")]
