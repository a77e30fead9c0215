"""The console's ratings (#23), over HTTP against the real app: the rating on the thread's
answer, the "rated 👎" filter of the list, the JSONL export of rated pairs (no personal data),
and `sealion-bot ratings export`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from storage.log import ConversationLog
from tests.helpers.console import settings_for, signed_in_client
from tests.helpers.conversation_log import find_conversation, key_of, sqlite_log, turn

HAPPY, UNHAPPY = key_of("telegram", "701"), key_of("whatsapp", "6591234567")


@pytest.fixture()
def seeded(tmp_path) -> Iterator[ConversationLog]:
    log = sqlite_log(tmp_path / "log.db")
    turn(log, HAPPY, "Selamat pagi", "Pagi! Ada yang bisa dibantu?", name="Happy Person",
         turn_id="t1", language="id")
    turn(log, UNHAPPY, "ขอสูตรต้มยำกุ้ง", "ต้มยำกุ้งใช้กุ้ง", name="Unhappy Person",
         turn_id="t2", language="th")
    assert log.rate(HAPPY, 1, "button", turn_id="t1") is not None
    assert log.rate(UNHAPPY, -1, "reaction", turn_id="t2") is not None
    yield log
    log.close()


@pytest.fixture()
def client(tmp_path, redis_url, seeded) -> TestClient:
    return signed_in_client(settings_for(tmp_path, redis_url))


def test_the_thread_shows_the_rating(client, seeded):
    unhappy = find_conversation(seeded, UNHAPPY)
    page = client.get(f"/admin/conversations/{unhappy.id}").text
    assert "rated 👎 (reaction)" in page
    happy = find_conversation(seeded, HAPPY)
    page = client.get(f"/admin/conversations/{happy.id}").text
    assert "rated 👍" in page and "rated 👎" not in page  # the nav says "Rated 👎"


def test_the_list_filters_rated_down(client):
    everyone = client.get("/admin").text
    assert "Happy Person" in everyone and "Unhappy Person" in everyone
    down = client.get("/admin", params={"rated": "down"})
    assert down.status_code == 200
    assert "Unhappy Person" in down.text and "Happy Person" not in down.text
    assert '<option value="down" selected>' in down.text
    up = client.get("/admin", params={"rated": "up"}).text
    assert "Happy Person" in up and "Unhappy Person" not in up
    assert "Unhappy Person" in client.get("/admin", params={"rated": "bogus"}).text


def test_the_ratings_export(client):
    response = client.get("/admin/export/ratings.jsonl")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    pairs = [json.loads(line) for line in response.text.splitlines()]
    assert [(p["prompt"], p["answer"], p["language"], p["rating"], p["platform"])
            for p in pairs] == [
        ("Selamat pagi", "Pagi! Ada yang bisa dibantu?", "id", 1, "telegram"),
        ("ขอสูตรต้มยำกุ้ง", "ต้มยำกุ้งใช้กุ้ง", "th", -1, "whatsapp")]
    assert all(set(p) == {"prompt", "answer", "language", "rating", "source", "platform",
                          "time"} for p in pairs)
    for private in ("701", "6591234567", "Happy Person", "Unhappy"):
        assert private not in response.text


def test_the_ratings_export_needs_a_session(tmp_path, redis_url, seeded):
    from bot.admin import mount_admin
    from bot.web.app import create_app

    settings = settings_for(tmp_path, redis_url)
    app = create_app(settings)
    assert mount_admin(app, settings)
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/admin/export/ratings.jsonl").status_code in (401, 303)


def test_the_cli_exports_rated_pairs(tmp_path, seeded, monkeypatch):
    from click.testing import CliRunner

    from bot.cli.main import main
    from bot.kernel.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    get_settings.cache_clear()
    target = tmp_path / "ratings.jsonl"
    try:
        result = CliRunner().invoke(main, ["ratings", "export", "-o", str(target)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in target.read_text().splitlines()]
    assert [p["rating"] for p in pairs] == [1, -1]
    # No person's id in any field (the time aside: its digits may contain anything).
    assert not any("701" in str(v) for p in pairs for k, v in p.items() if k != "time")
