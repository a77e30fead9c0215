"""Voice notes in the console, over HTTP against the real app: the spoken message shows its
transcript with a voice badge, and the kept audio plays from /admin/audio/<id>."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from storage.log import ConversationLog, TurnRecord
from tests.helpers.audio import voice_note
from tests.helpers.console import settings_for, signed_in_client
from tests.helpers.conversation_log import inbound, key_of, sqlite_log

CLIP = voice_note(1.0)


@pytest.fixture()
def seeded(tmp_path) -> Iterator[ConversationLog]:
    log = sqlite_log(tmp_path / "log.db")
    for user, audio in (("801", ((CLIP, "audio/ogg; codecs=opus"),)), ("802", ())):
        key = key_of("whatsapp", user)
        log.record_turn(TurnRecord(
            key=key, messages=(inbound(key, ""),), user_name=f"Speaker {user}",
            user_text="Di mana stesen bas yang paling dekat?",
            transcript="Di mana stesen bas yang paling dekat?", audio=audio,
            reply_text="Stesen bas terdekat ialah...", language="ms", turn_id=f"v{user}"))
    yield log
    log.close()


@pytest.fixture()
def client(tmp_path, redis_url, seeded) -> TestClient:
    return signed_in_client(settings_for(tmp_path, redis_url))


def _thread(client, seeded, name: str) -> str:
    row = next(r for r in seeded.list_conversations().rows if r.user_name == name)
    return client.get(f"/admin/conversations/{row.id}").text


def test_spoken_message_has_a_voice_badge_transcript_and_player(client, seeded):
    page = _thread(client, seeded, "Speaker 801")
    assert "badge voice" in page and "Di mana stesen bas yang paling dekat?" in page
    [src] = [part.split('"')[0] for part in page.split('<audio controls preload="none" src="')[1:]]
    played = client.get(src)
    assert played.status_code == 200 and played.content == CLIP
    assert played.headers["content-type"] == "audio/ogg"
    assert "private" in played.headers["cache-control"]


def test_without_kept_audio_there_is_a_badge_but_no_player(client, seeded):
    page = _thread(client, seeded, "Speaker 802")
    assert "badge voice" in page and "<audio" not in page


def test_audio_needs_a_session_and_an_existing_id(client, seeded):
    assert client.get("/admin/audio/999999").status_code == 404
    anonymous = TestClient(client.app, follow_redirects=False)
    assert anonymous.get("/admin/audio/1").status_code == 401  # data, not a page: no redirect
