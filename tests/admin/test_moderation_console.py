"""The console's moderation views, over HTTP against the real app: the flagged filter, the badge
on flagged messages with the withheld answer, and blocking and unblocking a person."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from bot.kernel.messages import Platform
from storage.abuse import BlockList
from storage.log import ConversationLog, GuardRecord, TurnRecord
from tests.helpers.console import csrf_of, settings_for, signed_in_client
from tests.helpers.conversation_log import inbound, key_of, sqlite_log, turn


@pytest.fixture()
def seeded(tmp_path) -> Iterator[ConversationLog]:
    log = sqlite_log(tmp_path / "log.db")
    turn(log, key_of("telegram", "701"), "Selamat pagi", "Pagi!", name="Calm Person")
    flagged = key_of("line", "U702")
    log.record_turn(TurnRecord(
        key=flagged, messages=(inbound(flagged, "write me something nasty"),), user_name="Edgy",
        reply_text="Sorry, I can't help with that.", language="en", turn_id="t1",
        input_guard=GuardRecord("safe", (), 12),
        output_guard=GuardRecord("unsafe", ("Violent",), 48), withheld="NASTY ANSWER TEXT"))
    yield log
    log.close()


@pytest.fixture()
def client(tmp_path, redis_url, seeded) -> TestClient:
    return signed_in_client(settings_for(tmp_path, redis_url))


def test_flagged_filter_and_badge(client, seeded):
    everyone = client.get("/admin").text
    assert "Calm Person" in everyone and "Edgy" in everyone
    flagged = client.get("/admin", params={"flagged": "1"})
    assert flagged.status_code == 200
    assert "Edgy" in flagged.text and "Calm Person" not in flagged.text
    assert re.search(r'name="flagged" value="1"\s+checked', flagged.text)
    export = client.get("/admin/export.jsonl", params={"flagged": "1"}).text
    assert "nasty" in export and "Selamat" not in export

    conversation = seeded.list_conversations().rows
    edgy = next(r for r in conversation if r.user_name == "Edgy")
    page = client.get(f"/admin/conversations/{edgy.id}").text
    assert 'class="msg out flagged"' in page
    assert 'badge flag unsafe' in page and "Violent" in page
    assert "answer withheld by the guard" in page and "NASTY ANSWER TEXT" in page
    assert "guard safe 12 ms" in page and "guard unsafe 48 ms" in page


def test_block_and_unblock_a_person(client, seeded, redis_url):
    blocklist = BlockList(redis.Redis.from_url(redis_url))
    edgy = next(r for r in seeded.list_conversations().rows if r.user_name == "Edgy")
    page = client.get(f"/admin/conversations/{edgy.id}").text
    assert "Block this person" in page
    response = client.post("/admin/people/block", data={
        "platform": "line", "user_id": "U702", "csrf": csrf_of(page),
        "next": f"/admin/conversations/{edgy.id}"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/conversations/{edgy.id}"
    assert blocklist.is_blocked(Platform.LINE, "U702")
    page = client.get(f"/admin/conversations/{edgy.id}").text
    assert ">blocked<" in page and "Unblock" in page

    listing = client.get("/admin/blocked").text
    assert "U702" in listing
    # Block someone by id from the list page, then unblock both.
    client.post("/admin/people/block", data={"platform": "whatsapp", "user_id": "6591234567",
                                             "note": "spam", "csrf": csrf_of(listing)})
    assert [p.person for p in blocklist.all()] == ["6591234567", "U702"]
    for platform, person in (("line", "U702"), ("whatsapp", "6591234567")):
        assert client.post("/admin/people/unblock", data={
            "platform": platform, "user_id": person, "csrf": csrf_of(listing)}).status_code == 303
    assert blocklist.all() == []
    assert "Nobody is blocked" in client.get("/admin/blocked").text


def test_block_needs_csrf_and_a_valid_person(client, redis_url):
    assert client.post("/admin/people/block",
                       data={"platform": "line", "user_id": "U1"}).status_code == 403
    page = client.get("/admin/blocked").text
    assert client.post("/admin/people/block", data={
        "platform": "myspace", "user_id": "U1", "csrf": csrf_of(page)}).status_code == 400
    assert client.post("/admin/people/block", data={
        "platform": "line", "user_id": " ", "csrf": csrf_of(page)}).status_code == 400
    assert BlockList(redis.Redis.from_url(redis_url)).all() == []
