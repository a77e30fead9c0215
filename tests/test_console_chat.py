"""`sealion-bot chat`, end to end: a real process driven through stdin -> the console adapter ->
the webhook's accept path -> real Redis and worker -> tiny model -> the conversation's outbox."""

from __future__ import annotations

import subprocess
import sys

import redis
from PIL import Image

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from tests.conftest import new_chat_id
from tests.helpers.waiting import wait_until

try:  # the language table moved to bot.kernel.languages
    from bot.kernel.languages import LANGUAGE_NAMES
except ImportError:  # pragma: no cover
    from bot.kernel.texts import LANGUAGE_NAMES  # type: ignore[attr-defined,no-redef]


def test_text_image_reset_and_reply_language_in_the_terminal(qwen_service, tmp_path):
    photo = tmp_path / "nasi goreng.jpg"
    Image.new("RGB", (640, 480), "orange").save(photo, format="JPEG")
    name = f"terminal-{new_chat_id()}"
    lines = [
        "Saya mau tanya, bagaimana cara membuat nasi goreng yang enak? Terima kasih banyak ya.",
        "/reset",
        "/lang th",
        f"/image {photo} Ini gambar apa?",
        f"/image {tmp_path / 'missing.jpg'}",
        "/quit",
        "never sent",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--conversation", name, "--timeout", "120"],
        input="\n".join(lines) + "\n", env=qwen_service.env, capture_output=True, text=True,
        timeout=500)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    # The first answer is in the language the person wrote in.
    assert out.index("[reply language: id]") < out.index(text(Text.RESET_DONE, "id"))
    assert text(Text.LANG_SET, "th", language=LANGUAGE_NAMES["th"]) in out
    assert "[reply language: th]" in out
    assert f"no such file: {tmp_path / 'missing.jpg'}" in out
    replies = [line for line in out.splitlines() if line.startswith("sealion> ")]
    # Model answers to the question and the photo, plus the two command notices.
    assert len(replies) >= 4, out
    assert "no answer within" not in out, out

    # The history was reset, then holds the photo's turn (its image stored) and its answer.
    client = redis.Redis.from_url(qwen_service.redis_url)
    history = RedisHistory(client, ttl=3600, max_turns=50)
    key = ConversationKey(platform=Platform.CONSOLE, bot_id="local", chat_id=name, user_id=name)
    # The history is written just after the reply is sent.
    entries = wait_until(lambda: (e := history.load(key)) and len(e) >= 2 and e, 15,
                         "the photo's turn in the history")
    assert [e.role for e in entries] == ["user", "assistant"], entries
    assert entries[0].text == "Ini gambar apa?" and len(entries[0].image_ids) == 1
    assert history.image(key, entries[0].image_ids[0])
    client.close()
