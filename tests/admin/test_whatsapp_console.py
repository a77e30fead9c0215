"""WhatsApp in the console: the list page shows this month's messages against
WHATSAPP_MONTHLY_MESSAGE_BUDGET: a count below 90 %, a warning from 90 %, "paused" at 100 %."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from bot.admin import mount_admin
from bot.kernel.messages import Platform
from bot.web.app import create_app
from storage.keys import KeyBuilder
from tests.helpers.console import login, settings_for
from tests.helpers.conversation_log import sqlite_log
from workers.turn.budget import this_month

BOT = "106540352242922"


@pytest.mark.parametrize(("sent", "shown"), [
    (89, "89 message(s) sent this month of 100"),
    (90, "90 of 100 messages sent this month: over 90 %"),
    (100, "the budget is spent, replies are paused until the month ends"),
])
def test_the_list_warns_from_90_percent(tmp_path, redis_url, sent, shown):
    sqlite_log(tmp_path / "log.db").close()
    settings = settings_for(tmp_path, redis_url, whatsapp_access_token="t",
                            whatsapp_app_secret="s", whatsapp_phone_number_id=BOT,
                            whatsapp_monthly_message_budget=100, bot_purpose="Library help.")
    app = create_app(settings)
    assert mount_admin(app, settings)
    redis.Redis.from_url(redis_url).set(
        KeyBuilder().sent_month(Platform.WHATSAPP, BOT, this_month()), sent)
    client = TestClient(app, follow_redirects=False)
    assert login(client).status_code == 303
    page = client.get("/admin").text
    assert shown in page
    assert ('role="alert"' in page) is (sent >= 90)


def test_any_whatsapp_id_blocks_finds_and_names_the_person(tmp_path, redis_url):
    """Blocking a phone blocks the person keyed by their BSUID; searching the phone finds
    their conversation (logged under the BSUID); the block page shows the canonical id."""
    from bot.kernel.messages import ConversationKey, InboundMessage
    from storage.abuse import BlockList
    from storage.identities import IdentityMap
    from tests.helpers.console import csrf_of
    from tests.helpers.conversation_log import turn

    phone, bsuid = "6591234567", "SG.1502576394655843"
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id=BOT, chat_id=bsuid, user_id=bsuid)
    log = sqlite_log(tmp_path / "log.db")
    turn(log, key, "where are the e-books?", "on the app", name="Siti")
    log.close()
    client = redis.Redis.from_url(redis_url)
    IdentityMap(client).resolve(InboundMessage(key=key, event_id="e", message_id="m",
                                               sender_id=bsuid, identities=(bsuid, phone)))
    settings = settings_for(tmp_path, redis_url)
    app = create_app(settings)
    assert mount_admin(app, settings)
    browser = TestClient(app, follow_redirects=False)
    assert login(browser).status_code == 303
    assert "on the app" in browser.get("/admin", params={"q": phone}).text  # its last message
    assert "on the app" not in browser.get("/admin", params={"q": "6590000000"}).text
    page = browser.get("/admin/blocked").text
    done = browser.post("/admin/people/block", data={
        "platform": "whatsapp", "user_id": phone, "note": "spam", "csrf": csrf_of(page)})
    assert done.status_code == 303
    blocks = BlockList(client, KeyBuilder())
    assert blocks.is_blocked(Platform.WHATSAPP, bsuid)
    assert not blocks.is_blocked(Platform.WHATSAPP, phone)  # one entry: the person's
    done = browser.post("/admin/people/unblock", data={
        "platform": "whatsapp", "user_id": phone, "csrf": csrf_of(page)})
    assert done.status_code == 303 and not blocks.is_blocked(Platform.WHATSAPP, bsuid)
    client.close()
