"""Telegram long polling, end to end: `sealion-bot poll` (a real process) -> getUpdates on the
stand-in -> the webhook's accept path -> real Redis and worker -> tiny model -> sendMessage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import new_chat_id
from tests.helpers.updates import text_update
from tests.helpers.waiting import sent_to, wait_replies, wait_settled, wait_until


class Poller:
    """`sealion-bot poll` in its own process group, so a test can SIGKILL it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "poll"], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture()
def poller(qwen_service, tmp_path) -> Iterator:
    started: list[Poller] = []
    env = {**qwen_service.env, "TELEGRAM_POLLING_TIMEOUT_SECONDS": "2"}

    def start() -> Poller:
        started.append(Poller(env, tmp_path / f"poller-{len(started)}.log"))
        return started[-1]

    yield start
    for p in started:
        p.kill()


def test_polled_updates_are_answered_once(poller, telegram):
    chats = [new_chat_id() for _ in range(3)]
    for chat in chats:
        telegram.add_update(text_update(chat, "Halo, apa kabar? Boleh minta tolong?"))
    edited = text_update(new_chat_id(), "edited")
    edited["edited_message"] = edited.pop("message")
    edited_id = telegram.add_update(edited)
    poller()

    for chat in chats:
        wait_replies(telegram, chat, 1)
    methods = [c.method for c in telegram.calls if c.method in ("deleteWebhook", "getUpdates")]
    assert methods[0] == "deleteWebhook", methods
    first = telegram.calls_to("getUpdates")[0]
    assert first.params["allowed_updates"] == ["message", "callback_query", "message_reaction"]
    assert int(first.params["timeout"]) == 2
    # Confirmed: the next getUpdates carried an offset past every accepted update.
    wait_until(lambda: telegram.pending_updates() in ([], [edited_id]), 10, "updates confirmed")
    assert edited_id not in telegram.delivered  # allowed_updates kept it away


def test_restart_mid_stream_neither_loses_nor_repeats(poller, telegram):
    first = [new_chat_id() for _ in range(12)]
    for chat in first:
        telegram.add_update(text_update(chat, "Selamat pagi! Cuaca hari ini bagaimana?"))
    one = poller()
    wait_until(lambda: telegram.delivered, 60, "a batch handed to the poller")
    one.kill()  # SIGKILL while it accepts the batch (or just after)
    later = [new_chat_id() for _ in range(3)]
    for chat in later:
        telegram.add_update(text_update(chat, "Sawasdee khrap, chuay noi dai mai?"))
    poller()

    for chat in first + later:
        wait_until(lambda chat=chat: sent_to(telegram, chat), 90, f"a reply to {chat}")
    # Every update confirmed (so none is handed out again), every turn over.
    wait_until(lambda: telegram.pending_updates() == [], 30, "every update confirmed")
    wait_settled(*first, *later)
    counts = {chat: len(sent_to(telegram, chat)) for chat in first + later}
    assert set(counts.values()) == {1}, counts


def test_conflict_while_a_webhook_is_set_is_handled(poller, telegram):
    telegram.webhook_url = "https://bot.example.org/webhooks/telegram"
    telegram.fail_next("getUpdates", 502, retry_after=None, times=2)  # a flaky network first
    p = poller()
    chat = new_chat_id()
    telegram.add_update(text_update(chat, "Xin chào, bạn khỏe không?"))
    wait_replies(telegram, chat, 1, timeout=90)
    assert telegram.webhook_url == ""

    # Someone sets a webhook while we poll: Telegram answers 409 until it is deleted again.
    telegram.webhook_url = "https://bot.example.org/webhooks/telegram"
    wait_until(lambda: any(c.status == 409 for c in telegram.calls_to("getUpdates")), 30,
               "a 409 from getUpdates")
    again = new_chat_id()
    telegram.add_update(text_update(again, "Magandang umaga! Kumusta ka?"))
    wait_replies(telegram, again, 1, timeout=60)
    assert len(telegram.calls_to("deleteWebhook")) >= 2
    assert "a webhook was set while polling (409)" in p.log()
    assert "another process is polling" not in p.log()


def test_two_pollers_with_one_token_answer_each_message_once(poller, telegram):
    """Telegram ends the older of two concurrent long polls with 409: both keep going, and
    the shared accept path still answers every message exactly once."""
    poller()
    poller()
    chats = [new_chat_id() for _ in range(6)]
    for chat in chats:
        telegram.add_update(text_update(chat, "Hai! Boleh saya tanya sesuatu?"))
        time.sleep(0.3)
    for chat in chats:
        wait_until(lambda chat=chat: sent_to(telegram, chat), 90, f"a reply to {chat}")
    wait_until(lambda: telegram.pending_updates() == [], 30, "every update confirmed")
    wait_settled(*chats)
    assert {chat: len(sent_to(telegram, chat)) for chat in chats} == {c: 1 for c in chats}
    assert any(c.status == 409 for c in telegram.calls_to("getUpdates"))


def test_ctrl_c_stops_cleanly(poller, telegram):
    p = poller()
    wait_until(lambda: "polling for @" in p.log(), 60, "the poller to start")
    wait_until(lambda: telegram.in_flight("getUpdates"), 10, "a long poll")
    p.process.send_signal(signal.SIGINT)
    assert p.process.wait(15) == 0, p.log()
    assert "polling stopped" in p.log()
    assert "Traceback" not in p.log()


def test_dev_polls_when_telegram_polling_is_on(telegram, checkpoints, tmp_path):
    """`sealion-bot dev` with only a token and TELEGRAM_POLLING=true: its own embedded Redis,
    API and worker, and the polling thread answering a message through the stand-in."""
    from bot.cli.embedded_redis import free_port
    from tests.conftest import TELEGRAM_TOKEN

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_", "REDIS_", "ADMIN_"))}
    env.update(TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
               TELEGRAM_POLLING="true", TELEGRAM_POLLING_TIMEOUT_SECONDS="2",
               MODEL_ID=str(checkpoints["qwen3_vl"]), MAX_NEW_TOKENS="16",
               ENVIRONMENT="test", HF_HUB_OFFLINE="1", ASR_BACKEND="off",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "dev", "--port", str(free_port()),
             "--concurrency", "2"], cwd=tmp_path, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        chat = new_chat_id()
        telegram.add_update(text_update(chat, "Kumusta! Ano ang masarap na ulam ngayon?"))
        wait_replies(telegram, chat, 1, timeout=150)
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
    output = log_path.read_text(errors="replace")
    assert "telegram   on, polling (getUpdates; no public URL needed)" in output
    assert telegram.calls_to("deleteWebhook")


def test_a_polled_tap_on_thumbs_down_is_stored(poller, telegram, qwen_service):
    """A 👎 (callback_query) fetched by getUpdates is stored against its answer (#23)."""
    import json

    from sqlalchemy import select

    from storage.log import ConversationLog
    from storage.log.models import Conversation, Rating

    chat = new_chat_id()
    telegram.add_update(text_update(chat, "Halo, apa kabar?"))
    poller()
    [sent] = wait_replies(telegram, chat, 1)
    markup = sent.params["reply_markup"]
    [[_, down]] = (json.loads(markup) if isinstance(markup, str) else markup)["inline_keyboard"]
    tap = text_update(chat, "unused")
    tap["callback_query"] = {
        "id": f"poll{chat}", "chat_instance": "-1", "data": down["callback_data"],
        "from": tap["message"]["from"],
        "message": {"message_id": sent.answer["result"]["message_id"], "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"}}}
    del tap["message"]
    telegram.add_update(tap)

    def stored() -> list:
        log = ConversationLog(qwen_service.env["DATABASE_URL"])
        try:
            with log.session() as session:
                return list(session.scalars(
                    select(Rating.rating).join(Conversation,
                                               Conversation.id == Rating.conversation_id)
                    .where(Conversation.chat_id == str(chat))).all())
        finally:
            log.close()

    assert wait_until(stored, 60, "the polled rating stored") == [-1]
    wait_until(lambda: telegram.calls_to("answerCallbackQuery"), 30, "the callback answered")
    wait_settled(chat)
    assert len(sent_to(telegram, chat)) == 1
