"""Operators told when a person asks for a human (issue 23): a Telegram chat of operators
through the same bot (the Telegram stand-in), and a signed POST to HANDOFF_NOTIFY_URL (a loopback
receiver); neither carries the person's words or ids."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from bot.kernel.settings import Settings
from tests.conftest import TELEGRAM_TOKEN
from workers.handoff_notify import HandoffNotifier, signature

SECRET = "n" * 40

pytestmark = pytest.mark.integration


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_a_signed_post_without_personal_data(receiver):
    url, got = receiver
    notifier = HandoffNotifier(Settings(_env_file=None, handoff_notify_url=url,
                                       handoff_notify_secret=SECRET))
    before = int(time.time())
    thread = notifier.requested("line", "th")
    assert thread is not None
    thread.join(10)
    [(headers, body)] = got
    assert json.loads(body) == {"event": "handoff.requested", "platform": "line",
                                "language": "th", "at": json.loads(body)["at"],
                                "path": "/admin/handoffs"}
    stamp = headers["X-Sealion-Timestamp"]
    assert int(stamp) >= before
    assert headers["X-Sealion-Signature"] == signature(SECRET, stamp, body)
    assert headers["X-Sealion-Signature"] != signature("x" * 40, stamp, body)


def test_the_operators_telegram_chat_is_told_through_the_same_bot(telegram_api):
    telegram_api.reset()
    notifier = HandoffNotifier(Settings(
        _env_file=None, telegram_bot_token=TELEGRAM_TOKEN,
        telegram_api_base_url=telegram_api.base_url,
        handoff_notify_telegram_chat_id="-100777"))
    thread = notifier.requested("whatsapp", "vi")
    assert thread is not None
    thread.join(10)
    [call] = telegram_api.calls_to("sendMessage")
    assert str(call.params["chat_id"]) == "-100777"
    assert "whatsapp" in call.params["text"] and "/admin/handoffs" in call.params["text"]
    assert telegram_api.spec_errors == []


def test_nothing_is_sent_unless_configured():
    assert HandoffNotifier(Settings(_env_file=None)).requested("telegram", "en") is None


def test_the_url_needs_a_long_secret():
    with pytest.raises(ValidationError, match="HANDOFF_NOTIFY_SECRET"):
        Settings(_env_file=None, handoff_notify_url="http://127.0.0.1/hook",
                 handoff_notify_secret="short")
