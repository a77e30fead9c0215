"""BOT_PURPOSE: in the system prompt of every turn (before the language instruction), read from
a file with `@path`, and a WhatsApp bot without one is warned about (startup summary, /readyz),
never refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.cli.startup import summary
from bot.kernel.prompt import PURPOSE_DOCS, purpose_warning, system_prompt
from bot.kernel.settings import PURPOSE_MAX_BYTES, Settings
from bot.kernel.texts import REPLY_INSTRUCTION
from tests.helpers.turn_world import TurnWorld
from workers.protocol import Generate

PURPOSE = "Answer questions about Singapore's public libraries: opening hours, loans, events."
WHATSAPP = dict(whatsapp_access_token="t", whatsapp_app_secret="s",
                whatsapp_phone_number_id="106540352242922")


def test_the_purpose_sits_between_the_base_and_the_language_instruction():
    prompt = system_prompt("Base.", "th", purpose=PURPOSE)
    assert prompt.startswith("Base.\n\n") and prompt.endswith(REPLY_INSTRUCTION["th"])
    assert PURPOSE in prompt and "outside this purpose" in prompt
    assert "in the person's language" in prompt
    assert system_prompt("Base.", "th") == f"Base.\n\n{REPLY_INSTRUCTION['th']}"


def test_a_purpose_file_is_read_once(tmp_path):
    path = tmp_path / "purpose.txt"
    path.write_text(f"  {PURPOSE}\n", encoding="utf-8")
    assert Settings(_env_file=None, bot_purpose=f"@{path}").bot_purpose == PURPOSE
    assert Settings(_env_file=None, bot_purpose=f" {PURPOSE} ").bot_purpose == PURPOSE
    path.write_bytes(b"x" * (PURPOSE_MAX_BYTES + 1))
    with pytest.raises(ValidationError, match="over 8192 bytes"):
        Settings(_env_file=None, bot_purpose=f"@{path}")
    path.write_bytes(b"\xff secret \xfe")
    with pytest.raises(ValidationError, match="is not UTF-8") as raised:
        Settings(_env_file=None, bot_purpose=f"@{path}")
    assert "secret" not in str(raised.value)
    with pytest.raises(ValidationError, match="no-such-file"):
        Settings(_env_file=None, bot_purpose=f"@{tmp_path}/no-such-file")


def test_every_turn_is_told_the_purpose(tmp_path):
    world = TurnWorld(None, tmp_path)
    try:
        world.settings = world.settings.model_copy(update={"bot_purpose": PURPOSE})
        service = world.service("The library opens at ten.")
        step = service.start(world.arrive("What is the capital of France?"))
        assert isinstance(step, Generate)
        assert PURPOSE in step.job.system and step.job.system.endswith(REPLY_INSTRUCTION["en"])
    finally:
        world.close()


def test_whatsapp_without_a_purpose_is_a_warning():
    plain = Settings(_env_file=None, **WHATSAPP)
    warning = purpose_warning(plain)
    assert warning is not None and "BOT_PURPOSE" in warning and "2026-01-15" in warning
    assert PURPOSE_DOCS in warning
    lines = summary(plain, "api", host="127.0.0.1", port=8000).splitlines()
    assert [line.split(None, 1)[0] for line in lines].count("warning") == 1
    assert purpose_warning(Settings(_env_file=None, bot_purpose=PURPOSE, **WHATSAPP)) is None
    assert "warning" not in summary(Settings(_env_file=None, bot_purpose=PURPOSE, **WHATSAPP),
                                    "api")
    assert purpose_warning(Settings(_env_file=None, whatsapp_access_token=None)) is None


@pytest.mark.integration
def test_readyz_carries_the_warning_and_stays_as_it_was(redis_server):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    url = f"{redis_server.url[:-2]}/13"
    for purpose, expected in (("", ["whatsapp_without_purpose"]), (PURPOSE, None)):
        app = create_app(Settings(_env_file=None, redis_url=url, bot_purpose=purpose,
                                  **WHATSAPP))
        with TestClient(app, base_url="http://127.0.0.1") as client:
            body = client.get("/readyz").json()
        got = [w["id"] for w in body["warnings"]] if "warnings" in body else None
        assert got == expected, body
        assert body["status"] == "not ready"  # no worker: the warning changes nothing
        if expected:
            assert body["warnings"][0]["docs"] == PURPOSE_DOCS
