"""The Telegram stand-in answers python-telegram-bot's real Bot, and raw HTTP, like Telegram."""

from __future__ import annotations

import asyncio
import datetime as dtm
import threading
import time

import httpx
import pytest
import telegram
from telegram.error import BadRequest, RetryAfter

from tests.helpers.specs import TELEGRAM_BOT_API
from tests.helpers.telegram_api import EntityParseError, TelegramStandIn, html_to_text
from tests.helpers.waiting import wait_until

SPEC = TELEGRAM_BOT_API
TOKEN = "424242:TEST-token"


@pytest.fixture(scope="module")
def server():
    with TelegramStandIn(TOKEN, spec_path=SPEC) as stand_in:
        yield stand_in


@pytest.fixture()
def api(server):
    server.reset()
    yield server


def run_bot(api: TelegramStandIn, work):
    """Run ``await work(bot)`` with a real, initialized python-telegram-bot Bot."""

    async def main():
        bot = telegram.Bot(TOKEN, base_url=f"{api.base_url}/bot",
                           base_file_url=f"{api.base_url}/file/bot")
        async with bot:
            return await work(bot)

    return asyncio.run(main())


def post(api: TelegramStandIn, method: str, token: str = TOKEN, **kwargs) -> httpx.Response:
    return httpx.post(f"{api.base_url}/bot{token}/{method}", timeout=10, **kwargs)


def test_get_me_through_bot(api):
    me = run_bot(api, lambda bot: bot.get_me())
    assert (me.id, me.is_bot, me.username) == (424242, True, "sealion_test_bot")
    assert me.supports_inline_queries is False
    assert [c.method for c in api.calls] == ["getMe", "getMe"]  # one from Bot.initialize()
    assert api.spec_errors == []


def test_send_message_recorded(api):
    async def work(bot):
        return await bot.send_message(1234, "Halo, apa kabar?",
                                      reply_parameters=telegram.ReplyParameters(7))

    message = run_bot(api, work)
    assert message.text == "Halo, apa kabar?" and message.chat.id == 1234
    assert message.chat.type == "private" and message.from_user.id == api.bot_id
    call = api.calls_to("sendMessage")[0]
    assert call.status == 200 and str(call.params["chat_id"]) == "1234"
    assert call.params["reply_parameters"].startswith("{")  # JSON-looking values stay as sent
    assert api.sent_texts(1234) == ["Halo, apa kabar?"] and api.sent_texts(99) == []
    assert api.spec_errors == []


def test_html_message_counts_and_shows_text_without_tags(api):
    async def work(bot):
        return await bot.send_message(-100777, "<b>bold</b> &amp; <i>it</i>", parse_mode="HTML")

    message = run_bot(api, work)
    assert message.text == "bold & it" and message.chat.type == "supergroup"
    text = "<b>" + "x" * 4096 + "</b>"  # 4096 characters once tags are stripped
    assert post(api, "sendMessage", data={"chat_id": 1, "text": text, "parse_mode": "HTML"}).json()["ok"]
    assert api.spec_errors == []


def test_html_parse_error_is_bad_request(api):
    async def work(bot):
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):  # PTB capitalizes
            await bot.send_message(1, "<b>unclosed", parse_mode="HTML")

    run_bot(api, work)
    assert api.calls_to("sendMessage")[0].status == 400
    assert api.sent_texts() == []
    assert api.spec_errors == []  # an expected Telegram answer, not a spec violation


@pytest.mark.parametrize("markup", [
    "<b>a", "a</b>", "<b><i>a</b></i>", "<div>a</div>", "1 < 2", "2 > 1", "fish & chips",
    "&nbsp;", '<span class="x">a</span>', "<br/>",
])
def test_invalid_html_rejected(markup):
    with pytest.raises(EntityParseError):
        html_to_text(markup)


def test_valid_html_accepted():
    markup = ('<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>'
              '<strike>k</strike><del>d</del><span class="tg-spoiler">p</span>'
              '<tg-spoiler>t</tg-spoiler><a href="https://x.y/?a=1&amp;b=2">a</a>'
              '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji><code>c</code>'
              '<pre><code class="language-python">x = 1</code></pre>'
              '<blockquote expandable>q</blockquote>&lt;&gt;&quot;&#65;&#x42;')
    assert html_to_text(markup) == "bsieunskdptа👍cx = 1q<>\"AB".replace("а", "a")


def test_retry_after_raised(api):
    api.fail_next("sendMessage", status=429, retry_after=7)

    async def work(bot):
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(1, "hi")
        await bot.send_message(1, "hi again")  # only the next call fails
        return info.value

    error = run_bot(api, work)
    retry_after = error.retry_after
    if isinstance(retry_after, dtm.timedelta):
        retry_after = retry_after.total_seconds()
    assert retry_after == 7
    assert [c.status for c in api.calls_to("sendMessage")] == [429, 200]
    assert api.sent_texts() == ["hi again"]


def test_fail_next_raw_answer(api):
    api.fail_next("SENDMESSAGE", status=403, retry_after=None, times=2)
    for _ in range(2):
        answer = post(api, "sendMessage", data={"chat_id": 1, "text": "x"})
        assert answer.status_code == 403
        assert answer.json() == {"ok": False, "error_code": 403,
                                 "description": "Forbidden: bot was blocked by the user"}
    assert post(api, "sendMessage", data={"chat_id": 1, "text": "x"}).status_code == 200


def test_file_download_through_bot(api):
    content = bytes(range(256)) * 40
    api.add_file("photo-1", content, file_path="photos/file_1.jpg")

    async def work(bot):
        file = await bot.get_file("photo-1")
        assert file.file_size == len(content)
        return await file.download_as_bytearray()

    assert bytes(run_bot(api, work)) == content
    assert [c.method for c in api.calls[1:]] == ["getFile", "file"]
    assert api.calls_to("file")[0].params == {"file_path": "photos/file_1.jpg"}


def test_file_too_big_and_unknown(api):
    api.add_file("huge", b"x", file_size=21 * 1024 * 1024)

    async def work(bot):
        with pytest.raises(BadRequest, match="(?i)file is too big"):
            await bot.get_file("huge")
        with pytest.raises(BadRequest):
            await bot.get_file("nope")

    run_bot(api, work)
    assert httpx.get(f"{api.base_url}/file/bot{TOKEN}/documents/nope").status_code == 404
    assert api.spec_errors == []


def test_too_long_text_is_spec_error(api):
    async def work(bot):
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(1, "x" * 4097)

    run_bot(api, work)
    assert len(api.spec_errors) == 1 and "4097" in api.spec_errors[0]


def test_empty_text_is_spec_error(api):
    answer = post(api, "sendMessage", json={"chat_id": 1, "text": "<b></b>", "parse_mode": "HTML"})
    assert answer.status_code == 400
    assert answer.json()["description"] == "Bad Request: message text is empty"
    assert api.spec_errors


def test_missing_required_field_is_spec_error(api):
    answer = post(api, "sendMessage", data={"text": "no chat"})
    assert answer.status_code == 400 and not answer.json()["ok"]
    assert any("chat_id" in e and "missing" in e for e in api.spec_errors)


def test_unknown_field_and_bad_type_are_spec_errors(api):
    assert post(api, "sendMessage", json={"chat_id": 1, "text": "x", "colour": "red"}).status_code == 200
    assert post(api, "sendMessage", data={"chat_id": 1, "text": "x", "disable_notification": "maybe"})
    assert any("colour" in e for e in api.spec_errors)
    assert any("disable_notification" in e for e in api.spec_errors)


def test_unknown_method_wrong_token_and_case(api):
    assert post(api, "sendTelepathy", data={}).json() == {
        "ok": False, "error_code": 404, "description": "Not Found"}
    assert post(api, "getMe", token="1:wrong").json() == {
        "ok": False, "error_code": 401, "description": "Unauthorized"}
    assert api.spec_errors == ["sendTelepathy: no such method in the Bot API"]
    api.reset()
    assert httpx.get(f"{api.base_url}/bot{TOKEN}/getme").json()["result"]["id"] == 424242
    assert api.calls[0].method == "getMe"


def test_parameter_encodings(api):
    post(api, "sendMessage", json={"chat_id": 5, "text": "json"})
    post(api, "sendMessage", data={"chat_id": "5", "text": "form"})
    post(api, "sendMessage", data={"chat_id": "5", "text": "multi"}, files={"x": ("a.txt", b"")})
    httpx.get(f"{api.base_url}/bot{TOKEN}/sendMessage", params={"chat_id": 5, "text": "query"})
    assert api.sent_texts(5) == ["json", "form", "multi", "query"]
    assert api.spec_errors == []


def test_chat_action_and_webhook(api):
    async def work(bot):
        assert await bot.send_chat_action(1, "typing") is True
        with pytest.raises(BadRequest):
            await bot.set_webhook("http://insecure.example/hook")
        assert await bot.set_webhook("https://example.org/hook", secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == "https://example.org/hook"
        assert await bot.delete_webhook()

    run_bot(api, work)
    assert post(api, "sendChatAction", data={"chat_id": 1, "action": "dancing"}).status_code == 400
    assert api.spec_errors == ["sendChatAction: unknown action 'dancing'"]


def test_send_message_draft(api):
    async def work(bot):
        return await bot.send_message_draft(1, draft_id=3, text="Thinking")

    assert run_bot(api, work) is True
    assert api.spec_errors == []


def test_wait_for_and_delay_with_concurrent_requests(api):
    api.set_delay("sendChatAction", 0.5)
    threading.Timer(0.1, post, (api, "sendMessage"), {"data": {"chat_id": 1, "text": "x"}}).start()
    assert len(api.wait_for("sendMessage", timeout=5)) == 1
    with pytest.raises(AssertionError, match="sendMessage"):
        api.wait_for("sendPhoto", timeout=0.2)

    started = time.monotonic()
    threads = [threading.Thread(target=post, args=(api, "sendChatAction"),
                                kwargs={"data": {"chat_id": 1, "action": "typing"}}) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0.5 <= time.monotonic() - started < 1.5  # answered concurrently, not one by one
    assert len(api.calls_to("sendChatAction")) == 4


def test_in_flight_and_releasing_a_delay(api):
    api.set_delay("getMe", 60.0)
    worker = threading.Thread(target=httpx.get, args=(f"{api.base_url}/bot{TOKEN}/getMe",),
                              kwargs={"timeout": 30})
    worker.start()
    deadline = time.monotonic() + 5
    while not api.in_flight("getMe") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.in_flight("getMe") == 1 and api.calls_to("getMe") == []  # recorded once answered
    api.set_delay("getMe", 0.0)  # releases the held request
    worker.join(timeout=5)
    assert api.in_flight("getMe") == 0 and api.calls_to("getMe")[0].status == 200


def test_get_updates_confirms_by_offset_and_filters_by_type(api):
    first = api.add_update({"message": {"message_id": 1, "date": 0, "text": "a",
                                        "chat": {"id": 5, "type": "private"}}})
    api.add_update({"edited_message": {"message_id": 1, "date": 0, "text": "b",
                                       "chat": {"id": 5, "type": "private"}}})
    third = api.add_update({"message": {"message_id": 2, "date": 0, "text": "c",
                                        "chat": {"id": 5, "type": "private"}}})
    url = f"{api.base_url}/bot{TOKEN}/getUpdates"
    got = httpx.post(url, json={"allowed_updates": ["message"], "timeout": 0}).json()["result"]
    assert [u["update_id"] for u in got] == [first, third]
    # Not confirmed yet: asked again (allowed_updates remembered), the same come back.
    again = httpx.post(url, json={"timeout": 0}).json()["result"]
    assert [u["update_id"] for u in again] == [first, third]
    httpx.post(url, json={"offset": third + 1, "timeout": 0})
    assert api.pending_updates() == []
    assert api.delivered == [first, third, first, third]
    assert api.spec_errors == []


def test_get_updates_long_poll_waits_for_an_update(api):
    api.max_poll_wait = 5.0
    url = f"{api.base_url}/bot{TOKEN}/getUpdates"
    threading.Timer(0.5, lambda: api.add_update({"message": {"text": "late"}})).start()
    started = time.monotonic()
    got = httpx.post(url, json={"timeout": 4}, timeout=10).json()["result"]
    assert len(got) == 1 and 0.4 < time.monotonic() - started < 3.0
    started = time.monotonic()
    assert httpx.post(url, json={"offset": got[0]["update_id"] + 1, "timeout": 1},
                      timeout=10).json()["result"] == []
    assert time.monotonic() - started >= 0.9


def test_get_updates_conflicts_with_a_webhook_until_it_is_deleted(api):
    run_bot(api, lambda bot: bot.set_webhook("https://example.org/hook"))
    api.add_update({"message": {"text": "x"}})
    answer = httpx.post(f"{api.base_url}/bot{TOKEN}/getUpdates", json={"timeout": 0})
    assert answer.status_code == 409 and "webhook is active" in answer.json()["description"]
    assert run_bot(api, lambda bot: bot.delete_webhook(drop_pending_updates=True)) is True
    assert api.pending_updates() == []
    assert httpx.post(f"{api.base_url}/bot{TOKEN}/getUpdates",
                      json={"timeout": 0}).json()["result"] == []


def test_a_second_get_updates_ends_the_waiting_one_with_409(api):
    url = f"{api.base_url}/bot{TOKEN}/getUpdates"
    answers = []
    first = threading.Thread(target=lambda: answers.append(
        httpx.post(url, json={"timeout": 2}, timeout=10)))
    first.start()
    wait_until(lambda: api.in_flight("getUpdates"), 10, "the first long poll")
    second = httpx.post(url, json={"timeout": 0}, timeout=10)
    first.join(10)
    assert second.status_code == 200
    assert answers[0].status_code == 409
    assert "terminated by other getUpdates request" in answers[0].json()["description"]
