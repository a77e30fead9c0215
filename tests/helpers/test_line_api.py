"""The LINE stand-in answers line-bot-sdk v3's real clients, and raw HTTP, like LINE; the webhook
fixtures under tests/data/line fit the official webhook schema."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid

import httpx
import pytest
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    MarkMessagesAsReadByTokenRequest,
    MessagingApi,
    MessagingApiBlob,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import NotFoundException, UnauthorizedException
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    TextMessageContent,
    UnfollowEvent,
)

from tests.helpers.line_api import (
    FIXTURES,
    LineStandIn,
    load_webhook,
    schema_errors,
    sign_body,
    webhook_errors,
)
from tests.helpers.specs import LINE_SPECS

SPEC = LINE_SPECS / "messaging-api.yml"
WEBHOOK_SPEC = LINE_SPECS / "webhook.yml"
TOKEN = "line-test-token"
USER = "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"
GROUP = "Ca56f94637cc4347f90a25382909b24b9"
FIXTURE_NAMES = [
    "text", "image", "image_set_1", "image_set_2", "sticker", "audio", "video", "location", "file",
    "follow", "unfollow", "join", "leave", "group_mention", "group_no_mention", "verify",
]


@pytest.fixture(scope="module")
def server():
    with LineStandIn(TOKEN, spec_path=SPEC) as stand_in:
        yield stand_in


@pytest.fixture()
def api(server):
    server.reset()
    yield server


def sdk(api: LineStandIn, token: str = TOKEN) -> ApiClient:
    return ApiClient(Configuration(host=api.base_url, access_token=token))


def run_async(api: LineStandIn, work):
    """Run ``await work(client)`` with a real AsyncApiClient pointed at the stand-in."""

    async def main():
        async with AsyncApiClient(Configuration(host=api.base_url, access_token=TOKEN)) as client:
            return await work(client)

    return asyncio.run(main())


def post(api: LineStandIn, path: str, body, token: str | None = TOKEN,
         **headers) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(api.base_url + path, json=body, headers=headers, timeout=10)


def get(api: LineStandIn, path: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(api.base_url + path, headers=headers, timeout=10)


def text(*texts: str) -> list[dict]:
    return [{"type": "text", "text": t} for t in texts]


# ------------------------------------------------------------------------- reply
def test_reply_through_sdk(api):
    token = api.issue_reply_token(USER)
    with sdk(api) as client:
        answer = MessagingApi(client).reply_message(ReplyMessageRequest(
            reply_token=token,
            messages=[TextMessage(text="Halo!"), TextMessage(text="Apa kabar?")]))
    assert len(answer.sent_messages) == 2
    assert all(m.id.isdigit() and m.quote_token for m in answer.sent_messages)
    call = api.calls_to("reply")[0]
    assert call.status == 200 and call.path == "/v2/bot/message/reply"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["user-agent"].startswith("line-bot-sdk-python/")
    assert call.body == {"replyToken": token, "messages": text("Halo!", "Apa kabar?"),
                         "notificationDisabled": False}  # the SDK always sends it
    assert api.calls_to("replyMessage") == [call]  # operationIds name the same calls
    assert api.sent_texts(USER) == ["Halo!", "Apa kabar?"] and api.sent_texts("Uother") == []
    assert api.spec_errors == []


def test_reply_token_is_single_use(api):
    token = api.issue_reply_token(USER)
    request = ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="once")])
    with sdk(api) as client:
        MessagingApi(client).reply_message(request)
        with pytest.raises(ApiException) as info:
            MessagingApi(client).reply_message(request)
    assert info.value.status == 400
    assert json.loads(info.value.body) == {"message": "Invalid reply token"}
    assert [c.status for c in api.calls_to("reply")] == [200, 400]
    assert api.sent_texts() == ["once"]
    assert api.spec_errors == []  # an expected LINE answer, not a spec violation


def test_unknown_and_expired_reply_tokens(api):
    assert post(api, "/v2/bot/message/reply",
                {"replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", "messages": text("x")}
                ).json() == {"message": "Invalid reply token"}
    token = api.issue_reply_token(USER)
    api.expire_reply_token(token)
    answer = post(api, "/v2/bot/message/reply", {"replyToken": token, "messages": text("x")})
    assert answer.status_code == 400 and answer.json() == {"message": "Invalid reply token"}
    assert api.sent_texts() == [] and api.spec_errors == []


def test_concurrent_replies_spend_a_token_once(api):
    token = api.issue_reply_token(USER)
    statuses = []

    def reply():
        statuses.append(post(api, "/v2/bot/message/reply",
                             {"replyToken": token, "messages": text("hi")}).status_code)

    threads = [threading.Thread(target=reply) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400, 400, 400]
    assert api.sent_texts(USER) == ["hi"]


def test_reply_tokens_are_unique(api):
    tokens = {api.issue_reply_token(USER) for _ in range(50)}
    assert len(tokens) == 50 and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)


# -------------------------------------------------------------------------- push
def test_push_with_retry_key_through_sdk(api):
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=USER, messages=[TextMessage(text="Jawapan siap.")])
    with sdk(api) as client:
        first = MessagingApi(client).push_message_with_http_info(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as info:
            MessagingApi(client).push_message(request, x_line_retry_key=key)
    assert first.status_code == 200 and len(first.data.sent_messages) == 1
    request_id = first.headers["x-line-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    error = info.value
    assert error.status == 409
    body = json.loads(error.body)
    assert body["message"] == "The retry key is already accepted"
    assert body["sentMessages"][0]["id"] == first.data.sent_messages[0].id
    assert error.headers["x-line-accepted-request-id"] == request_id  # case-insensitive
    assert error.headers.get("X-Line-Accepted-Request-Id") == request_id
    calls = api.calls_to("push")
    assert [c.status for c in calls] == [200, 409]
    assert calls[0].headers["x-line-retry-key"] == key
    assert calls[0].body == {"to": USER, "messages": text("Jawapan siap."),
                             "notificationDisabled": False}
    assert api.sent_texts(USER) == ["Jawapan siap."]  # nothing sent twice
    assert api.spec_errors == []


def test_push_without_retry_key_sends_every_time(api):
    for _ in range(2):
        answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("again")})
        assert answer.status_code == 200 and answer.headers["x-line-request-id"]
    assert api.sent_texts(USER) == ["again", "again"]


def test_retry_key_must_be_a_uuid(api):
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("x")},
                  **{"X-Line-Retry-Key": "not-a-uuid"})
    assert answer.status_code == 400
    assert "X-Line-Retry-Key" in answer.json()["message"]
    assert api.sent_texts() == []
    assert any("X-Line-Retry-Key" in e for e in api.spec_errors)


def test_failed_push_does_not_accept_its_retry_key(api):
    key = str(uuid.uuid4())
    api.fail_next("push", 500)
    statuses = [post(api, "/v2/bot/message/push", {"to": USER, "messages": text("x")},
                     **{"X-Line-Retry-Key": key}).status_code for _ in range(3)]
    assert statuses == [500, 200, 409]
    assert api.sent_texts() == ["x"]


def test_async_sdk_push_retry_and_blob(api):
    key = str(uuid.uuid4())
    api.add_content("544317990123456789", b"\x89PNG\r\n" + bytes(range(256)) * 8, "image/png")

    async def work(client):
        messaging = AsyncMessagingApi(client)
        request = PushMessageRequest(to=GROUP, messages=[TextMessage(text="Selesai.")])
        sent = await messaging.push_message_with_http_info(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as info:
            await messaging.push_message(request, x_line_retry_key=key)
        await messaging.show_loading_animation(
            ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=30))
        blob = await AsyncMessagingApiBlob(client).get_message_content("544317990123456789")
        return sent, info.value, blob

    sent, error, blob = run_async(api, work)
    assert sent.status_code == 200 and sent.data.sent_messages[0].id
    assert error.status == 409
    # aiohttp's CIMultiDictProxy, case-insensitive like urllib3's HTTPHeaderDict
    assert error.headers.get("X-Line-Accepted-Request-Id") == sent.headers["x-line-request-id"]
    assert json.loads(error.body)["message"] == "The retry key is already accepted"
    assert bytes(blob) == b"\x89PNG\r\n" + bytes(range(256)) * 8
    assert [c.status for c in api.calls_to("push")] == [200, 409]
    assert api.sent_texts(GROUP) == ["Selesai."]
    assert api.calls_to("loading")[0].status == 202
    assert api.spec_errors == []


def test_sent_texts_follow_recipients(api):
    post(api, "/v2/bot/message/push", {"to": USER, "messages": text("to user")})
    post(api, "/v2/bot/message/push", {"to": GROUP, "messages": [
        {"type": "sticker", "packageId": "446", "stickerId": "1988"}, *text("to group")]})
    token = api.issue_reply_token(GROUP)
    post(api, "/v2/bot/message/reply", {"replyToken": token, "messages": text("reply in group")})
    assert api.sent_texts() == ["to user", "to group", "reply in group"]
    assert api.sent_texts(GROUP) == ["to group", "reply in group"]
    assert api.sent_texts(USER) == ["to user"]
    assert api.spec_errors == []


# ---------------------------------------------------------------- message checks
@pytest.mark.parametrize("path", ["/v2/bot/message/reply", "/v2/bot/message/push"])
def test_more_than_five_messages_refused(api, path):
    body = {"messages": text(*"abcdef")}
    body.update({"replyToken": api.issue_reply_token(USER)} if "reply" in path else {"to": USER})
    answer = post(api, path, body)
    assert answer.status_code == 400
    assert answer.json()["details"][0] == {"message": "Size must be between 1 and 5",
                                          "property": "messages"}
    assert api.sent_texts() == []
    assert api.spec_errors and all("messages" in e for e in api.spec_errors)
    api.spec_errors.clear()
    body["messages"] = text(*"abcde")  # five is fine, and the token was not spent
    assert post(api, path, body).status_code == 200 and api.spec_errors == []


def test_text_length_counts_utf16_code_units(api):
    fits = "a" * 4998 + "😀"  # 4999 characters, 5000 UTF-16 code units
    too_long = "a" * 4999 + "😀"  # 5000 characters, 5001 UTF-16 code units
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text(fits)})
    assert answer.status_code == 200
    assert api.spec_errors == []
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("ok", too_long)})
    assert answer.status_code == 400
    assert answer.json()["details"] == [{"message": "Length must be between 0 and 5000",
                                         "property": "messages[1].text"}]
    assert api.spec_errors == ["push: messages[1].text: Length must be between 0 and 5000"]
    assert api.sent_texts() == [fits]


def test_too_long_text_through_sdk(api):
    token = api.issue_reply_token(USER)
    with sdk(api) as client, pytest.raises(ApiException) as info:
        MessagingApi(client).reply_message(ReplyMessageRequest(
            reply_token=token, messages=[TextMessage(text="x" * 5001)]))
    assert info.value.status == 400
    assert json.loads(info.value.body)["message"] == "The request body has 1 error(s)"
    assert len(api.spec_errors) == 1


def test_empty_text_refused(api):
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("")})
    assert answer.status_code == 400
    assert answer.json()["details"] == [{"message": "may not be empty",
                                         "property": "messages[0].text"}]
    assert api.spec_errors == ["push: messages[0].text: may not be empty"]


@pytest.mark.parametrize("message, where", [
    ({"type": "markdown", "text": "x"}, "messages[0].type"),
    ({"type": "text"}, "messages[0].text"),
    ({"type": "image", "originalContentUrl": "https://example.com/a.jpg"},
     "messages[0].previewImageUrl"),
    ({"type": "sticker", "packageId": "446"}, "messages[0].stickerId"),
    ({"text": "no type"}, "messages[0].type"),
])
def test_messages_checked_against_their_spec_type(api, message, where):
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": [message]})
    assert answer.status_code == 400
    assert where in [d["property"] for d in answer.json()["details"]]
    assert any(e.startswith(f"push: {where}: ") for e in api.spec_errors), api.spec_errors


def test_request_fields_checked(api):
    answer = post(api, "/v2/bot/message/push",
                  {"messages": text("x"), "notificationDisabled": "no"})
    assert answer.status_code == 400
    assert {d["property"] for d in answer.json()["details"]} == {"to", "notificationDisabled"}
    assert "push: to: must be specified" in api.spec_errors
    assert any(e.startswith("push: notificationDisabled: ") for e in api.spec_errors)


def test_undecodable_body_refused(api):
    answer = httpx.post(api.base_url + "/v2/bot/message/push", content=b"{not json",
                        headers={"Authorization": f"Bearer {TOKEN}",
                                 "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert api.spec_errors and "not JSON" in api.spec_errors[0]


# ----------------------------------------------------------------------- loading
@pytest.mark.parametrize("seconds", [5, 20, 60, None])
def test_loading_animation_accepted(api, seconds):
    body = {"chatId": USER} | ({"loadingSeconds": seconds} if seconds else {})
    answer = post(api, "/v2/bot/chat/loading/start", body)
    assert answer.status_code == 202 and answer.json() == {}
    assert api.spec_errors == []


@pytest.mark.parametrize("seconds", [0, 7, 65, "20", 20.0])
def test_loading_seconds_checked(api, seconds):
    answer = post(api, "/v2/bot/chat/loading/start", {"chatId": USER, "loadingSeconds": seconds})
    assert answer.status_code == 400
    assert answer.json()["details"][0]["property"] == "loadingSeconds"
    assert api.spec_errors and all("loadingSeconds" in e for e in api.spec_errors)


def test_loading_through_sdk(api):
    with sdk(api) as client:
        messaging = MessagingApi(client)
        assert messaging.show_loading_animation(
            ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=20)) == {}
        with pytest.raises(ApiException) as info:  # the SDK itself lets 7 through
            messaging.show_loading_animation(
                ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=7))
    assert info.value.status == 400
    assert api.calls_to("loading")[0].body == {"chatId": USER, "loadingSeconds": 20}
    assert [c.status for c in api.calls_to("showLoadingAnimation")] == [202, 400]
    assert api.spec_errors == ["loading: loadingSeconds: must be a multiple of 5 between 5 and 60"]


# ------------------------------------------------------------------- mark as read
def test_mark_as_read_through_sdk_fits_the_spec(api):
    with sdk(api) as client:
        MessagingApi(client).mark_messages_as_read_by_token(
            MarkMessagesAsReadByTokenRequest(mark_as_read_token="30yhdy232KFDHgdkdsFg"))
    [call] = api.calls_to("markMessagesAsReadByToken")
    assert call.path == "/v2/bot/chat/markAsRead" and call.status == 200
    assert api.marked_read() == ["30yhdy232KFDHgdkdsFg"] and api.spec_errors == []


def test_mark_as_read_without_a_token_is_a_spec_error(api):
    answer = post(api, "/v2/bot/chat/markAsRead", {})
    assert answer.status_code == 400 and api.marked_read() == []
    assert api.spec_errors == ["mark_as_read: markAsReadToken: must be specified"]


# ------------------------------------------------------- profile, content, bot info
def test_profile_through_sdk(api):
    api.set_profile(USER, "Siti Nurhaliza", language="ms")
    api.set_profile("Unolang", "Budi")
    with sdk(api) as client:
        messaging = MessagingApi(client)
        profile = messaging.get_profile(USER)
        no_language = messaging.get_profile("Unolang")
        with pytest.raises(NotFoundException) as info:
            messaging.get_profile("Ustranger")
    assert (profile.display_name, profile.user_id, profile.language) == (
        "Siti Nurhaliza", USER, "ms")
    assert profile.picture_url.startswith("https://")
    assert no_language.language is None
    assert "language" not in get(api, "/v2/bot/profile/Unolang").json()
    assert info.value.status == 404 and json.loads(info.value.body) == {"message": "Not found"}
    assert [c.status for c in api.calls_to("profile")] == [200, 200, 404, 200]
    assert api.spec_errors == []


def test_group_member_profile(api):
    api.set_profile(USER, "Siti", language="ms")
    with sdk(api) as client:
        member = MessagingApi(client).get_group_member_profile(GROUP, USER)
        with pytest.raises(NotFoundException):
            MessagingApi(client).get_group_member_profile(GROUP, "Ustranger")
    assert (member.display_name, member.user_id) == ("Siti", USER)
    assert [c.status for c in api.calls_to("member_profile")] == [200, 404]


def test_content_through_sdk_blob(api):
    content = bytes(range(256)) * 64
    api.add_content("544318300000000003", content, "video/mp4")
    with sdk(api) as client:
        blob = MessagingApiBlob(client)
        assert bytes(blob.get_message_content("544318300000000003")) == content
        with pytest.raises(NotFoundException) as info:
            blob.get_message_content("999")
    assert info.value.status == 404
    raw = get(api, "/v2/bot/message/544318300000000003/content")
    assert raw.headers["content-type"] == "video/mp4" and raw.content == content
    assert get(api, "/v2/bot/message/544318300000000003/content/transcoding").json() == {
        "status": "succeeded"}
    assert [c.status for c in api.calls_to("content")] == [200, 404, 200]
    assert api.spec_errors == []


def test_bot_info_through_sdk(api):
    with sdk(api) as client:
        info = MessagingApi(client).get_bot_info()
    assert info.user_id == api.bot_user_id and info.basic_id.startswith("@")
    assert info.chat_mode == "bot" and info.display_name
    assert api.calls_to("bot_info")[0].status == 200


def test_answers_fit_the_spec(api):
    api.set_profile(USER, "Siti", language="ms")
    token = api.issue_reply_token(USER)
    answers = {
        "ReplyMessageResponse": post(api, "/v2/bot/message/reply",
                                     {"replyToken": token, "messages": text("a", "b")}),
        "PushMessageResponse": post(api, "/v2/bot/message/push",
                                    {"to": USER, "messages": text("c")}),
        "UserProfileResponse": get(api, f"/v2/bot/profile/{USER}"),
        "BotInfoResponse": get(api, "/v2/bot/info"),
        "ErrorResponse": post(api, "/v2/bot/message/reply",
                              {"replyToken": token, "messages": text("again")}),
    }
    for schema, answer in answers.items():
        assert schema_errors(answer.json(), schema, SPEC) == [], schema
    details = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("")}).json()
    assert schema_errors(details, "ErrorResponse", SPEC) == []


# ---------------------------------------------------------------- auth and paths
@pytest.mark.parametrize("method, path", [
    ("POST", "/v2/bot/message/reply"), ("POST", "/v2/bot/message/push"),
    ("POST", "/v2/bot/chat/loading/start"), ("GET", f"/v2/bot/profile/{USER}"),
    ("GET", "/v2/bot/message/1/content"), ("GET", "/v2/bot/info"),
    ("GET", "/v2/bot/message/quota"),
])
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_authentication_required(api, method, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.request(method, api.base_url + path, headers=headers, timeout=10,
                           json={"chatId": USER} if method == "POST" else None)
    assert answer.status_code == 401
    assert answer.json()["message"].startswith("Authentication failed")
    assert api.sent_texts() == []


def test_wrong_token_through_sdk(api):
    with sdk(api, token="stale") as client, pytest.raises(UnauthorizedException) as info:
        MessagingApi(client).get_bot_info()
    assert info.value.status == 401


def test_other_spec_paths_answer_empty(api):
    assert get(api, "/v2/bot/message/quota").json() == {}
    assert get(api, "/v2/bot/richmenu/list").status_code == 200  # a literal beats {richMenuId}
    assert api.calls_to("/v2/bot/message/quota")[0].status == 200
    assert api.calls_to("/v2/bot/richmenu/list")[0].name == "/v2/bot/richmenu/list"
    assert api.spec_errors == []


def test_unknown_path_and_method_are_spec_errors(api):
    assert get(api, "/v2/bot/message/typing").status_code == 404
    assert get(api, "/v2/bot/message/reply").status_code == 405
    assert len(api.spec_errors) == 2


# --------------------------------------------------------------- test controls
def test_fail_next_with_retry_after(api):
    api.fail_next("push", 429, retry_after=3)
    request = PushMessageRequest(to=USER, messages=[TextMessage(text="hi")])
    with sdk(api) as client:
        with pytest.raises(ApiException) as info:
            MessagingApi(client).push_message(request)
        MessagingApi(client).push_message(request)  # only the next call fails
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "3"
    assert json.loads(info.value.body)["message"].startswith("The API rate limit")
    assert [c.status for c in api.calls_to("push")] == [429, 200]
    assert api.sent_texts() == ["hi"]


def test_fail_next_times_and_message(api):
    api.fail_next("pushMessage", 403, message="Not allowed to push", times=2)
    for _ in range(2):
        answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("x")})
        assert (answer.status_code, answer.json()) == (403, {"message": "Not allowed to push"})
        assert "retry-after" not in answer.headers
    answer = post(api, "/v2/bot/message/push", {"to": USER, "messages": text("x")})
    assert answer.status_code == 200


def test_fail_next_keeps_the_reply_token(api):
    token = api.issue_reply_token(USER)
    api.fail_next("reply", 500)
    body = {"replyToken": token, "messages": text("x")}
    assert post(api, "/v2/bot/message/reply", body).status_code == 500
    assert post(api, "/v2/bot/message/reply", body).status_code == 200


def test_delay_in_flight_and_wait_for(api):
    api.set_delay("push", 0.5)
    started = time.monotonic()
    thread = threading.Thread(target=post, args=(api, "/v2/bot/message/push",
                                                 {"to": USER, "messages": text("slow")}))
    thread.start()
    deadline = time.monotonic() + 5
    while api.in_flight("push") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.in_flight("push") == 1 and api.calls_to("push") == []
    calls = api.wait_for("push", timeout=5)
    thread.join()
    assert calls[0].status == 200 and calls[0].at >= started
    assert time.monotonic() - started >= 0.45
    assert api.in_flight("push") == 0


def test_lowering_delay_releases_held_requests(api):
    api.set_delay("push", 30)
    thread = threading.Thread(target=post, args=(api, "/v2/bot/message/push",
                                                 {"to": USER, "messages": text("held")}))
    thread.start()
    deadline = time.monotonic() + 5
    while api.in_flight("push") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    api.set_delay("push", 0)
    api.wait_for("push", timeout=5)
    thread.join()
    assert time.monotonic() - started < 2


def test_wait_for_times_out_with_what_it_saw(api):
    get(api, "/v2/bot/info")
    with pytest.raises(AssertionError, match=r"push .*bot_info\(200\)"):
        api.wait_for("push", timeout=0.1)


def test_reset_keeps_contents_and_profiles(api):
    api.add_content("42", b"bytes", "audio/m4a")
    api.set_profile(USER, "Siti")
    api.fail_next("bot_info", 500)
    get(api, "/v2/bot/message/typing")
    api.reset()
    assert api.calls == [] and api.spec_errors == []
    assert get(api, "/v2/bot/info").status_code == 200  # the failure was forgotten
    assert get(api, "/v2/bot/message/42/content").content == b"bytes"
    assert get(api, f"/v2/bot/profile/{USER}").json()["displayName"] == "Siti"


@pytest.mark.integration
def test_without_spec_still_answers_like_line():
    with LineStandIn("other-token", spec_path=None, bot_user_id="U" + "1" * 32) as bare:
        token = bare.issue_reply_token(USER)
        assert post(bare, "/v2/bot/message/reply", {"replyToken": token, "messages": text("hi")},
                    token="other-token").status_code == 200
        assert post(bare, "/v2/bot/message/push", {"to": USER, "messages": text("")},
                    token="other-token").status_code == 400
        assert get(bare, "/v2/bot/info", token="other-token").json()["userId"] == "U" + "1" * 32
        assert get(bare, "/v2/bot/info").status_code == 401
        assert bare.sent_texts(USER) == ["hi"]


# ---------------------------------------------------------------- webhook fixtures
def test_every_fixture_is_present():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(FIXTURE_NAMES)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_fits_webhook_schema(name):
    raw = (FIXTURES / f"{name}.json").read_bytes()
    body = json.loads(raw)
    assert webhook_errors(body, WEBHOOK_SPEC) == []
    assert re.fullmatch(r"U[0-9a-f]{32}", body["destination"])
    for event in body["events"]:
        assert event["mode"] == "active" and event["deliveryContext"] == {"isRedelivery": False}
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event["webhookEventId"])  # a ULID
    # line-bot-sdk's own parser takes it, with the signature LINE would send
    events = WebhookParser("channel-secret").parse(raw.decode(), sign_body(raw, "channel-secret"))
    assert len(events) == len(body["events"])


def test_fixture_shapes():
    text_event = load_webhook("text")["events"][0]
    assert text_event["source"] == {"type": "user", "userId": USER}
    assert text_event["replyToken"] and text_event["message"]["type"] == "text"
    image = load_webhook("image")["events"][0]["message"]
    assert image["contentProvider"] == {"type": "line"} and "imageSet" not in image
    sets = [load_webhook(f"image_set_{i}")["events"][0]["message"]["imageSet"] for i in (1, 2)]
    assert sets[0]["id"] == sets[1]["id"] and [s["index"] for s in sets] == [1, 2]
    assert {s["total"] for s in sets} == {2}
    mention = load_webhook("group_mention")["events"][0]
    assert mention["source"]["type"] == "group" and mention["source"]["userId"]
    mentionees = mention["message"]["mention"]["mentionees"]
    assert [m["isSelf"] for m in mentionees] == [True, False]
    said = mention["message"]["text"]
    spans = [said[m["index"]:m["index"] + m["length"]] for m in mentionees]
    assert spans == ["@SEA-LION", "@Budi"]
    assert "mention" not in load_webhook("group_no_mention")["events"][0]["message"]
    assert load_webhook("join")["events"][0]["source"] == {"type": "group", "groupId": GROUP}
    assert "replyToken" not in load_webhook("leave")["events"][0]
    assert "replyToken" not in load_webhook("unfollow")["events"][0]
    assert load_webhook("verify")["events"] == []


def test_fixtures_parse_into_sdk_events():
    def parse(name):
        raw = json.dumps(load_webhook(name))
        return WebhookParser("s").parse(raw, sign_body(raw.encode(), "s"))[0]

    assert isinstance(parse("text").message, TextMessageContent)
    assert parse("group_mention").message.mention.mentionees[0].is_self is True
    image = parse("image_set_2")
    assert isinstance(image, MessageEvent) and isinstance(image.message, ImageMessageContent)
    assert (image.message.image_set.index, image.message.image_set.total) == (2, 2)
    assert isinstance(parse("follow"), FollowEvent)
    assert isinstance(parse("unfollow"), UnfollowEvent)
    assert isinstance(parse("join"), JoinEvent) and isinstance(parse("leave"), LeaveEvent)


def test_load_webhook_sets_reply_tokens(api):
    token = api.issue_reply_token(USER)
    body = load_webhook("text.json", reply_token=token)
    assert body["events"][0]["replyToken"] == token
    assert post(api, "/v2/bot/message/reply", {"replyToken": body["events"][0]["replyToken"],
                                               "messages": text("ok")}).status_code == 200
    assert "replyToken" not in load_webhook("leave", reply_token=token)["events"][0]


@pytest.mark.parametrize("break_it, where", [
    (lambda b: b["events"][0]["message"].pop("quoteToken"), "events[0].message.quoteToken"),
    (lambda b: b["events"][0].pop("webhookEventId"), "events[0].webhookEventId"),
    (lambda b: b["events"][0]["deliveryContext"].pop("isRedelivery"),
     "events[0].deliveryContext.isRedelivery"),
    (lambda b: b["events"][0]["message"].update(type="gif"), "events[0].message.type"),
    (lambda b: b["events"][0]["source"].update(type="group"), "events[0].source.groupId"),
    (lambda b: b.update(destination="Ubot0000000000000000000000000000"), "destination"),
])
def test_webhook_schema_catches_broken_bodies(break_it, where):
    body = load_webhook("text")
    break_it(body)
    errors = webhook_errors(body, WEBHOOK_SPEC)
    assert any(e.startswith(f"{where}: ") for e in errors), errors


def test_sign_body_matches_line_sdk():
    raw = (FIXTURES / "text.json").read_bytes()
    with pytest.raises(Exception, match="(?i)signature"):
        WebhookParser("channel-secret").parse(raw.decode(), sign_body(raw, "other-secret"))
