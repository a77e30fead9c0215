"""Every adapter's `fetch_media` goes through the fetch policy, against the real stand-ins.

The WhatsApp token reaches only the Graph API and the allowed media hosts; a media URL naming
another target is refused before any byte is sent to it. LINE images from an external provider
are never requested. Telegram files come through the same capped download.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from adapters.base import MediaTooLarge
from adapters.fetch import AddressRefused, HostRefused
from adapters.line import ExternalContentRefused, LineAdapter
from adapters.telegram import TelegramAdapter
from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.settings import Settings
from tests.conftest import (
    LINE_SECRET,
    LINE_TOKEN,
    TELEGRAM_TOKEN,
    WHATSAPP_APP_SECRET,
    WHATSAPP_PHONE_ID,
    WHATSAPP_TOKEN,
)
from tests.helpers.fetch_server import FetchServer
from tests.helpers.payloads import load

MEDIA = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes all the same"


@pytest.fixture(scope="module")
def elsewhere():
    """Another loopback server: an internal service the bot must never reach."""
    with FetchServer() as server:
        yield server


def fetch(adapter, ref: str, size: int | None = None) -> bytes:
    async def main() -> bytes:
        try:
            return await adapter.fetch_media(ref, size)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


def whatsapp_adapter(whatsapp, **overrides) -> WhatsAppAdapter:
    return WhatsAppAdapter(Settings(
        _env_file=None, whatsapp_access_token=WHATSAPP_TOKEN,
        whatsapp_app_secret=WHATSAPP_APP_SECRET, whatsapp_phone_number_id=WHATSAPP_PHONE_ID,
        whatsapp_api_base_url=f"{whatsapp.base_url}/v23.0", **overrides))


def test_whatsapp_media_comes_from_the_graph_api_with_the_token(whatsapp):
    whatsapp.add_media("7001", MEDIA)
    assert fetch(whatsapp_adapter(whatsapp), "7001") == MEDIA
    [download] = whatsapp.calls_to("media_download")
    assert download.status == 200


def test_whatsapp_token_never_goes_to_a_loopback_service(whatsapp, elsewhere):
    elsewhere.reset()
    whatsapp.add_media("7002", MEDIA, url=f"{elsewhere.base_url}/bytes/10")
    with pytest.raises(AddressRefused):
        fetch(whatsapp_adapter(whatsapp), "7002")
    assert elsewhere.calls == []


@pytest.mark.parametrize("url", ["https://attacker.example/collect",
                                 "https://lookaside.fbsbx.com.attacker.example/x",
                                 "http://169.254.169.254/latest/meta-data/"])
def test_whatsapp_media_url_outside_the_allowed_hosts_is_refused(whatsapp, url):
    whatsapp.add_media("7003", MEDIA, url=url)
    with pytest.raises(HostRefused):
        fetch(whatsapp_adapter(whatsapp), "7003")


def test_whatsapp_meta_cdn_hosts_are_a_setting():
    adapter = WhatsAppAdapter(Settings(
        _env_file=None, whatsapp_access_token="t", whatsapp_app_secret="s",
        whatsapp_phone_number_id="1", whatsapp_media_hosts="cdn.example, *.media.example"))
    policy = adapter._fetcher().policy
    assert policy.host_allowed("graph.facebook.com") and policy.host_allowed("cdn.example")
    assert policy.host_allowed("a.b.media.example") and not policy.host_allowed("media.example")
    assert not policy.host_allowed("lookaside.fbsbx.com")


def test_whatsapp_media_over_the_cap_is_refused(whatsapp):
    whatsapp.add_media("7004", b"z" * 5000)
    with pytest.raises(MediaTooLarge):
        fetch(whatsapp_adapter(whatsapp, max_download_bytes=4096), "7004")
    assert whatsapp.calls_to("media_download") == []  # refused on the announced size


def line_adapter(line) -> LineAdapter:
    return LineAdapter(Settings(_env_file=None, line_channel_secret=LINE_SECRET,
                                line_channel_access_token=LINE_TOKEN,
                                line_api_base_url=line.base_url,
                                line_data_api_base_url=line.base_url))


def test_line_content_comes_from_the_data_api(line):
    line.add_content("544317990000000001", MEDIA)
    assert fetch(line_adapter(line), "544317990000000001") == MEDIA
    [call] = line.calls_to("content")
    assert call.status == 200


def test_line_external_provider_image_is_never_requested(line, elsewhere):
    elsewhere.reset()
    body = load("line", "image")
    body["events"][0]["message"]["contentProvider"] = {
        "type": "external", "originalContentUrl": f"{elsewhere.base_url}/bytes/10",
        "previewImageUrl": f"{elsewhere.base_url}/bytes/5"}
    adapter = line_adapter(line)
    [message] = adapter.parse(json.dumps(body).encode())
    [attachment] = message.attachments
    assert elsewhere.base_url not in attachment.ref  # the URL does not even enter the queue
    with pytest.raises(ExternalContentRefused):
        fetch(adapter, attachment.ref)
    with pytest.raises(ExternalContentRefused):
        fetch(adapter, f"{elsewhere.base_url}/bytes/10")  # an old queued ref, too
    assert elsewhere.calls == []


def telegram_adapter(telegram, **overrides) -> TelegramAdapter:
    return TelegramAdapter(Settings(_env_file=None, telegram_bot_token=TELEGRAM_TOKEN,
                                    telegram_api_base_url=telegram.base_url, **overrides))


def test_telegram_file_comes_through_the_policy(telegram):
    telegram.add_file("photo-1", MEDIA, file_path="photos/policy.jpg")
    assert fetch(telegram_adapter(telegram), "photo-1") == MEDIA


def test_telegram_file_over_the_cap_is_refused(telegram):
    telegram.add_file("photo-2", b"p" * 5000, file_path="photos/file_2.jpg", file_size=100)
    with pytest.raises(MediaTooLarge):  # Telegram said 100 bytes; the stream is cut anyway
        fetch(telegram_adapter(telegram, max_download_bytes=4096), "photo-2")
