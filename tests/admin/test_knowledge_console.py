"""The console's Knowledge page over HTTP against the real app: upload (CSRF, size limit), the
list, a document's passages, removal; and the thread shows the passages an answer used."""

from __future__ import annotations

import json

import pytest

from storage.log import TurnRecord
from tests.helpers.console import csrf_of, settings_for, signed_in_client
from tests.helpers.conversation_log import inbound, key_of, sqlite_log
from tests.helpers.documents import docx_file

pytestmark = pytest.mark.integration  # the decode processes read the upload

HANDBOOK = docx_file("Clinic handbook", [
    ("Opening hours", ["The clinic is open Monday to Friday from 8 am to 5 pm."]),
    ("Fees", ["A consultation costs 150 baht for adults."])])


@pytest.fixture()
def client(tmp_path, redis_url):
    sqlite_log(tmp_path / "log.db").close()
    return signed_in_client(settings_for(tmp_path, redis_url,
                                         knowledge_max_file_bytes=64 * 1024))


def _upload(client, data: bytes, csrf: str, name: str = "handbook.docx"):
    return client.post("/admin/knowledge", data={"csrf": csrf, "title": ""},
                       files={"file": (name, data, "application/octet-stream")})


def test_upload_list_passages_and_remove(client):
    page = client.get("/admin/knowledge")
    assert page.status_code == 200 and "No documents yet" in page.text
    csrf = csrf_of(page.text)
    assert _upload(client, HANDBOOK, "wrong").status_code == 403
    added = _upload(client, HANDBOOK, csrf)
    assert added.status_code == 303 and "added=" in added.headers["location"]
    listing = client.get(added.headers["location"]).text
    assert "Added #1 Clinic handbook" in listing
    assert 'href="/admin/knowledge/1"' in listing
    passages = client.get("/admin/knowledge/1").text
    assert "The clinic is open Monday to Friday" in passages and "Opening hours" in passages
    again = _upload(client, HANDBOOK, csrf)
    assert "already" in client.get(again.headers["location"]).text
    assert client.post("/admin/knowledge/1/delete", data={"csrf": "wrong"}).status_code == 403
    removed = client.post("/admin/knowledge/1/delete", data={"csrf": csrf})
    assert removed.status_code == 303
    assert "No documents yet" in client.get("/admin/knowledge").text
    assert client.get("/admin/knowledge/1").status_code == 404


def test_an_upload_over_the_limit_is_refused(client):
    csrf = csrf_of(client.get("/admin/knowledge").text)
    assert _upload(client, b"x" * (200 * 1024), csrf, "big.txt").status_code == 413
    unreadable = _upload(client, b"%PDF-1.4 broken", csrf, "broken.pdf")
    assert "unreadable" in client.get(unreadable.headers["location"]).text


def test_the_thread_shows_the_passages_an_answer_used(tmp_path, client):
    log = sqlite_log(tmp_path / "log.db")
    key = key_of("telegram", "901")
    used = [{"p": 7, "d": 3, "t": "Clinic handbook", "pg": 2, "s": 9.5}]
    log.record_turn(TurnRecord(key=key, messages=(inbound(key, "When do you open?"),),
                               user_text="When do you open?", reply_text="At 8 am.",
                               language="en", turn_id="k1", knowledge=json.dumps(used)))
    row = log.list_conversations().rows[0]
    log.close()
    thread = client.get(f"/admin/conversations/{row.id}").text
    assert "Sources used:" in thread
    assert 'href="/admin/knowledge/3#p7">#3 Clinic handbook p.2</a>' in thread
