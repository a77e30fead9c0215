"""The WhatsApp stand-in answers raw HTTP like the Cloud API, and the webhook fixtures match the
spec."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.specs import WHATSAPP_CLOUD_API
from tests.helpers.whatsapp_api import (
    MAX_TEXT,
    URL_TTL,
    WhatsAppStandIn,
    _load_spec,
    validate_webhook,
    webhook_signature,
)

SPEC = WHATSAPP_CLOUD_API
DATA = Path(__file__).resolve().parents[1] / "data" / "whatsapp"
TOKEN = "wa-test-token"
PHONE_ID = "106540352242922"
USER = "6591234567"
FIXTURES = ["text", "image_caption", "image", "document", "sticker", "audio", "location",
            "reaction", "unsupported", "status_sent", "status_delivered", "status_read", "status_failed",
            "two_messages"]


@pytest.fixture(scope="module")
def server():
    with WhatsAppStandIn(TOKEN, PHONE_ID, spec_path=SPEC) as stand_in:
        yield stand_in


@pytest.fixture()
def api(server):
    server.reset()
    yield server


def auth(token: str | None = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def send(api: WhatsAppStandIn, body, phone_id: str = PHONE_ID, token: str | None = TOKEN,
         **kwargs) -> httpx.Response:
    kwargs.setdefault("timeout", 10)
    return httpx.post(f"{api.base_url}/v23.0/{phone_id}/messages", json=body,
                      headers=auth(token), **kwargs)


def text(body: str = "Halo! Apa khabar?", to: str = USER, **fields) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "text", "text": {"body": body, "preview_url": False}, **fields}


def read(message_id: str = "wamid.HBgKNjU5MTIzNDU2NxUCABIYFDNBMEIxQzJEM0U0RjVBNkI3QzhEAA==",
         typing: bool = True, **fields) -> dict:
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id, **fields}
    if typing:
        body.setdefault("typing_indicator", {"type": "text"})
    return body


def error_of(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error


# ------------------------------------------------------------------------------ messages
def test_send_text_answered_and_recorded(api):
    answer = send(api, text("Halo!"))
    assert answer.status_code == 200
    data = answer.json()
    assert data["messaging_product"] == "whatsapp"
    assert data["contacts"] == [{"input": USER, "wa_id": USER}]
    assert len(data["messages"]) == 1 and data["messages"][0]["id"].startswith("wamid.")
    second = send(api, text("Lagi", to="6598765432")).json()["messages"][0]["id"]
    assert second != data["messages"][0]["id"]  # every message gets its own wamid

    call = api.calls_to("send")[0]
    assert (call.name, call.path, call.status) == ("send", f"/v23.0/{PHONE_ID}/messages", 200)
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.body == text("Halo!") and call.at <= time.monotonic()
    assert api.sent_texts() == ["Halo!", "Lagi"]
    assert api.sent_texts(USER) == ["Halo!"] and api.sent_texts("999") == []
    assert api.spec_errors == []


def test_send_to_a_business_scoped_user_id(api):
    """`recipient` instead of `to` (an extension newer than the vendored spec): answered with
    the contact's user_id; a malformed BSUID or both fields are spec errors."""
    bsuid = "SG.1502576394655843"
    body = {k: v for k, v in text("Halo!").items() if k != "to"} | {"recipient": bsuid}
    answer = send(api, body)
    assert answer.status_code == 200
    assert answer.json()["contacts"] == [{"input": bsuid, "user_id": bsuid}]
    assert api.sent_texts(bsuid) == ["Halo!"] and api.spec_errors == []
    send(api, body | {"recipient": "6591234567"})
    send(api, body | {"to": USER})
    assert [e.split(":")[1].strip() for e in api.spec_errors] == ["recipient", "recipient and to both given"]
    assert send(api, {k: v for k, v in body.items() if k != "recipient"}).status_code == 400


def test_reply_with_context_and_plus_number(api):
    context = {"message_id": "wamid.HBgKNjU5MTIzNDU2NxUCABIYFDNBMEIxQzJEM0U0RjVBNkI3QzhEAA=="}
    answer = send(api, text("Jawapan", to="+65 9123 4567", context=context))
    assert answer.json()["contacts"] == [{"input": "+65 9123 4567", "wa_id": USER}]
    preview = text("Lihat https://sea-lion.ai")
    preview["text"]["preview_url"] = True
    assert send(api, preview).status_code == 200
    assert api.sent_texts() == ["Jawapan", "Lihat https://sea-lion.ai"]
    assert api.spec_errors == []


def test_mark_read_with_and_without_typing_indicator(api):
    for body in (read(), read(typing=False)):
        answer = send(api, body)
        assert answer.status_code == 200 and answer.json() == {"success": True}
    calls = api.calls_to("read")
    assert [c.body.get("typing_indicator") for c in calls] == [{"type": "text"}, None]
    assert api.calls_to("send") == [] and api.sent_texts() == []
    assert api.spec_errors == []


@pytest.mark.parametrize(("body", "problem"), [
    (read(typing_indicator={"type": "dots"}), "typing_indicator"),
    (read(status="seen"), "status"),
    ({"messaging_product": "whatsapp", "status": "read"}, "message_id"),
])
def test_bad_read_receipts_refused(api, body, problem):
    answer = send(api, body)
    assert answer.status_code == 400 and error_of(answer)["code"] == 100
    assert api.calls_to("read")[0].status == 400
    assert api.spec_errors and all(e.startswith("read: ") for e in api.spec_errors)
    assert any(problem in e for e in api.spec_errors)


@pytest.mark.parametrize("body", [
    {"type": "image", "image": {"id": "1003383421387256", "caption": "Ini"}},
    {"type": "image", "image": {"link": "https://example.org/a.jpg"}},
    {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "\U0001F44D"}},
    {"type": "sticker", "sticker": {"id": "1274889310539163"}},
    {"type": "audio", "audio": {"id": "1890245617683451"}},
])
def test_other_message_types_pass_the_spec(api, body):
    answer = send(api, {"messaging_product": "whatsapp", "recipient_type": "individual",
                        "to": USER, **body})
    assert answer.status_code == 200 and answer.json()["messages"][0]["id"].startswith("wamid.")
    assert api.calls_to("send")[0].status == 200
    assert api.sent_texts() == []  # only text messages count
    assert api.spec_errors == []


def test_spec_examples_for_text_and_read_pass(api):
    examples = _load_spec(SPEC.resolve()).message_examples
    for name in ("Send Text Message", "Send Reply to Text Message",
                 "Send typing indicator and read receipt"):
        assert send(api, examples[name]).status_code == 200, name
    assert [c.name for c in api.calls] == ["send", "send", "read"]
    assert api.spec_errors == []


def test_text_limit_is_4096_characters(api):
    assert send(api, text("x" * MAX_TEXT)).status_code == 200
    assert send(api, text("\U0001F600" * MAX_TEXT)).status_code == 200  # characters, not bytes
    assert api.spec_errors == []
    answer = send(api, text("x" * (MAX_TEXT + 1)))
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert "4096" in error["error_data"]["details"]
    assert len(api.spec_errors) == 1 and "4097" in api.spec_errors[0]
    assert api.spec_errors[0].startswith("send: text.body")
    assert len(api.sent_texts()) == 2


@pytest.mark.parametrize("body", ["", "   \n"])
def test_empty_text_is_refused_and_a_spec_error(api, body):
    answer = send(api, text(body))
    assert answer.status_code == 400
    assert error_of(answer)["message"] == "(#100) The parameter text['body'] is required."
    assert any("empty" in e for e in api.spec_errors)
    assert api.sent_texts() == []


@pytest.mark.parametrize(("drop", "message"), [
    ("messaging_product", "(#100) The parameter messaging_product is required."),
    ("to", "(#100) The parameter to is required."),
])
def test_missing_required_parameter(api, drop, message):
    body = text()
    del body[drop]
    answer = send(api, body)
    assert answer.status_code == 400 and error_of(answer)["message"] == message
    assert any(drop in e and "required" in e for e in api.spec_errors)


def test_missing_text_body_and_wrong_product(api):
    body = text()
    body["text"] = {"preview_url": False}
    assert send(api, body).status_code == 400
    assert any("'body' is a required property" in e for e in api.spec_errors)
    api.reset()
    answer = send(api, text(messaging_product="sms"))
    assert answer.status_code == 400 and "WHATSAPP" in error_of(answer)["error_data"]["details"]
    assert any("messaging_product" in e for e in api.spec_errors)


def test_unknown_fields_and_types_are_spec_errors(api):
    assert send(api, text(colour="red")).status_code == 200  # Meta ignores, the spec forbids
    body = text()
    body["text"]["preview"] = True
    assert send(api, body).status_code == 200
    body = text(type="telepathy")
    send(api, body)
    no_recipient_type = text()
    del no_recipient_type["recipient_type"]
    assert send(api, no_recipient_type).status_code == 200
    errors = "\n".join(api.spec_errors)
    assert "'colour' was unexpected" in errors and "'preview' was unexpected" in errors
    assert "'telepathy' is not one of" in errors and errors.count("telepathy") == 1
    assert "'recipient_type' is a required property" in errors


def test_unknown_phone_number_id(api):
    answer = send(api, text(), phone_id="999999999999999")
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error["code"], error["type"], error["error_subcode"]) == (
        100, "GraphMethodException", 33)
    assert "999999999999999" in error["message"]
    assert api.calls_to("send")[0].status == 400 and api.sent_texts() == []
    assert api.spec_errors == []


def test_body_that_is_not_json(api):
    answer = httpx.post(f"{api.base_url}/v23.0/{PHONE_ID}/messages", content=b"{nope",
                        headers={**auth(), "Content-Type": "application/json"})
    assert answer.status_code == 400 and error_of(answer)["code"] == 100
    assert api.calls[0].body == "{nope"
    assert api.spec_errors and "not JSON" in api.spec_errors[0]


# ------------------------------------------------------------------------------------ auth
def test_auth_required_everywhere(api):
    api.add_media("m-auth", b"abc")
    missing = send(api, text(), token=None)
    assert missing.status_code == 401
    assert error_of(missing)["code"] == 104 and error_of(missing)["type"] == "OAuthException"
    assert missing.headers["www-authenticate"].startswith('OAuth "Facebook Platform"')
    wrong = send(api, text(), token="wa-stolen")
    assert wrong.status_code == 401 and error_of(wrong)["code"] == 190
    assert error_of(wrong)["message"].startswith("Invalid OAuth access token")
    basic = httpx.post(f"{api.base_url}/v23.0/{PHONE_ID}/messages", json=text(),
                       headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert httpx.get(f"{api.base_url}/v23.0/m-auth").status_code == 401
    url = httpx.get(f"{api.base_url}/v23.0/m-auth", headers=auth()).json()["url"]
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=auth("wa-stolen")).status_code == 401
    assert [c.status for c in api.calls] == [401, 401, 401, 401, 200, 401, 401]
    assert api.sent_texts() == [] and api.spec_errors == []


# ----------------------------------------------------------------------------- failures
def test_24_hour_window_error_shape(api):
    api.fail_next("send")
    answer = send(api, text("Sudah lewat 24 jam"))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["message"] == "(#131047) Re-engagement message"
    assert (error["type"], error["code"]) == ("OAuthException", 131047)
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Message failed to send because more than 24 hours have passed since the "
                   "customer last replied to this number."}
    assert send(api, text("Sekali lagi")).status_code == 200  # only the next call fails
    assert [c.status for c in api.calls_to("send")] == [400, 200]
    assert api.sent_texts() == ["Sekali lagi"]
    assert api.spec_errors == []


def test_throughput_errors(api):
    api.fail_next("send", code=130429)
    answer = send(api, text())
    assert answer.status_code == 400  # Meta's table: throttling codes come with HTTP 400
    assert error_of(answer)["message"] == "(#130429) Rate limit hit"
    assert error_of(answer)["error_data"]["details"] == \
        "Cloud API message throughput has been reached."

    api.fail_next("send", code=131056, times=2)
    for _ in range(2):
        error = error_of(send(api, text()))
        assert error["code"] == 131056
        assert error["message"] == "(#131056) (Business Account, Consumer Account) pair rate " \
                                   "limit hit"
    assert send(api, text()).status_code == 200

    api.fail_next("send", status=429, code=4)  # the Graph app-level limit
    answer = send(api, text())
    assert answer.status_code == 429
    assert error_of(answer)["message"] == "(#4) Application request limit reached"
    assert [c.status for c in api.calls_to("send")] == [400, 400, 400, 200, 429]


def test_fail_next_custom_and_per_name(api):
    api.fail_next("read", status=500, code=131000, message="Something went wrong",
                  details="Try later")
    api.fail_next("media_info", code=100, message="Invalid parameter")
    assert send(api, text()).status_code == 200  # a send is not a read
    answer = send(api, read())
    assert answer.status_code == 500
    assert error_of(answer)["error_data"]["details"] == "Try later"
    assert error_of(answer)["message"] == "(#131000) Something went wrong"
    api.add_media("m-fail", b"x")
    assert httpx.get(f"{api.base_url}/v23.0/m-fail", headers=auth()).status_code == 400
    assert httpx.get(f"{api.base_url}/v23.0/m-fail", headers=auth()).status_code == 200


# --------------------------------------------------------------------------------- media
def test_media_info_and_download(api):
    content = bytes(range(256)) * 40
    api.add_media("1003383421387256", content, "image/png")
    info = httpx.get(f"{api.base_url}/v23.0/1003383421387256", headers=auth())
    assert info.status_code == 200
    meta = info.json()
    assert meta["url"].startswith(f"{api.base_url}/media-download/1003383421387256?token=")
    assert meta["mime_type"] == "image/png" and meta["id"] == "1003383421387256"
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert int(meta["file_size"]) == len(content) and meta["messaging_product"] == "whatsapp"

    download = httpx.get(meta["url"], headers=auth())
    assert download.status_code == 200 and download.content == content
    assert download.headers["content-type"] == "image/png"
    again = httpx.get(f"{api.base_url}/v23.0/1003383421387256", headers=auth()).json()["url"]
    assert again != meta["url"]  # a fresh URL each time
    assert [c.name for c in api.calls] == ["media_info", "media_download", "media_info"]
    assert api.calls[1].path == "/media-download/1003383421387256" and api.calls[1].body is None
    assert api.spec_errors == []


def test_media_url_expires(api):
    assert api.url_ttl == URL_TTL == 300.0
    api.add_media("m-ttl", b"bytes")
    api.url_ttl = 0.5
    url = httpx.get(f"{api.base_url}/v23.0/m-ttl", headers=auth()).json()["url"]
    assert httpx.get(url, headers=auth()).status_code == 200  # within its lifetime, even twice
    assert httpx.get(url, headers=auth()).status_code == 200
    time.sleep(0.6)
    assert httpx.get(url, headers=auth()).status_code == 404
    fresh = httpx.get(f"{api.base_url}/v23.0/m-ttl", headers=auth()).json()["url"]
    assert httpx.get(fresh, headers=auth()).content == b"bytes"
    api.reset()
    assert api.url_ttl == URL_TTL


def test_unknown_media_and_forged_urls(api):
    api.add_media("m-real", b"real")
    answer = httpx.get(f"{api.base_url}/v23.0/m-nope", headers=auth())
    assert answer.status_code == 400
    assert (error_of(answer)["code"], error_of(answer)["error_subcode"]) == (100, 33)
    other = httpx.get(f"{api.base_url}/v23.0/m-real", headers=auth(),
                      params={"phone_number_id": "123"})
    assert other.status_code == 400  # the media belongs to another number
    assert httpx.get(f"{api.base_url}/v23.0/m-real", headers=auth(),
                     params={"phone_number_id": PHONE_ID}).status_code == 200
    url = httpx.get(f"{api.base_url}/v23.0/m-real", headers=auth()).json()["url"]
    token = url.split("token=")[1]
    forged = f"{api.base_url}/media-download/m-other?token={token}"
    assert httpx.get(forged, headers=auth()).status_code == 404
    assert httpx.get(f"{api.base_url}/media-download/m-real?token=guess",
                     headers=auth()).status_code == 404
    assert api.spec_errors == []


def test_reset_keeps_media(api):
    api.add_media("m-keep", b"kept", "audio/ogg")
    api.reset()
    meta = httpx.get(f"{api.base_url}/v23.0/m-keep", headers=auth()).json()
    assert meta["mime_type"] == "audio/ogg"
    assert httpx.get(meta["url"], headers=auth()).content == b"kept"


# ---------------------------------------------------------------------------- other paths
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v23.0/a/b"),
    ("POST", f"/v22.0/{PHONE_ID}/messages"),
    ("POST", f"/v23.0/{PHONE_ID}/media"),
    ("GET", f"/v23.0/{PHONE_ID}/messages"),
    ("DELETE", "/v23.0/m-1"),
    ("GET", "/"),
])
def test_other_paths_are_404_and_spec_errors(api, method, path):
    answer = httpx.request(method, f"{api.base_url}{path}", headers=auth(),
                           json={} if method == "POST" else None)
    assert answer.status_code == 404 and "error" in answer.json()
    assert api.calls_to(path)[0].status == 404
    assert len(api.spec_errors) == 1 and path in api.spec_errors[0]


# ------------------------------------------------------------------------ timing controls
def test_wait_for_and_delay_with_concurrent_requests(api):
    api.set_delay("read", 0.5)
    threading.Timer(0.1, send, (api, text())).start()
    assert len(api.wait_for("send", timeout=5)) == 1
    with pytest.raises(AssertionError, match="send"):
        api.wait_for("media_info", timeout=0.2)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(api, read())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0.5 <= time.monotonic() - started < 1.5  # answered concurrently, not one by one
    assert len(api.calls_to("read")) == 4


def test_in_flight_and_releasing_a_delay(api):
    api.set_delay("send", 60.0)
    worker = threading.Thread(target=send, args=(api, text("tunggu")), kwargs={"timeout": 30})
    worker.start()
    deadline = time.monotonic() + 5
    while not api.in_flight("send") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.in_flight("send") == 1 and api.calls_to("send") == []  # recorded once answered
    api.set_delay("send", 0.0)  # releases the held request
    worker.join(timeout=5)
    assert api.in_flight("send") == 0 and api.sent_texts() == ["tunggu"]


# ------------------------------------------------------------------------------ the spec
def test_spec_loaded_once_per_process(server):
    assert WhatsAppStandIn(spec_path=SPEC).spec is server.spec
    assert _load_spec.cache_info().misses >= 1


@pytest.mark.integration
def test_no_spec_means_no_checks():
    with WhatsAppStandIn(spec_path=None) as bare:
        assert bare.spec is None
        assert send(bare, text("x" * 5000)).status_code == 400  # still refused, as Meta does
        assert send(bare, text(colour="red")).status_code == 200
        assert bare.spec_errors == []


# ------------------------------------------------------------------------------- webhooks
def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def test_fixture_set_is_complete():
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_the_spec(name):
    payload = load(name)
    assert validate_webhook(payload, SPEC) == []
    assert payload["object"] == "whatsapp_business_account"
    (entry,) = payload["entry"]
    (change,) = entry["changes"]
    value = change["value"]
    assert change["field"] == "messages" and value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_ID
    if name.startswith("status_"):
        (status,) = value["statuses"]
        assert status["status"] == name.removeprefix("status_")
        assert status["id"].startswith("wamid.") and "messages" not in value
    else:
        assert value["contacts"][0]["wa_id"] == USER and value["contacts"][0]["profile"]["name"]
        expected = {"image_caption": "image", "two_messages": "text"}.get(name, name)
        assert {m["type"] for m in value["messages"]} == {expected}
        assert all(m["from"] == USER and m["id"].startswith("wamid.") for m in value["messages"])


def test_fixture_details():
    assert load("text")["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"].startswith(
        "SG.")
    assert [n for n in FIXTURES if "user_id" in json.dumps(load(n))] == ["text"]
    image = load("image_caption")["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    assert set(image) == {"id", "mime_type", "sha256", "caption"}
    plain = load("image")["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    assert "caption" not in plain
    messages = load("two_messages")["entry"][0]["changes"][0]["value"]["messages"]
    assert len(messages) == 2 and messages[0]["id"] != messages[1]["id"]
    failed = load("status_failed")["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert failed["errors"][0]["code"] == 131047
    unsupported = load("unsupported")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert unsupported["errors"][0]["code"] == 131051


def test_spec_webhook_examples_validate():
    """The schema repairs (see the module docstring) are faithful: the spec's own examples of
    ``messages`` webhooks all validate."""
    examples = _load_spec(SPEC.resolve()).webhook_examples
    checked = {name: validate_webhook(example, SPEC) for name, example in examples.items()
               if example["entry"][0]["changes"][0]["field"] == "messages"}
    assert len(checked) == 13 and all(errors == [] for errors in checked.values()), checked


@pytest.mark.parametrize(("name", "path", "value", "problem"), [
    ("image", ["messages", 0, "image", "sha256"], None, "'sha256' is a required property"),
    ("status_read", ["statuses", 0, "status"], "seen", "'seen' is not one of"),
    ("text", ["messages", 0, "text"], {}, "'body' is a required property"),
    ("location", ["messages", 0, "location", "latitude"], "1.28", "is not of type 'number'"),
    ("text", ["metadata", "phone_number_id"], None, "'phone_number_id' is a required property"),
])
def test_validate_webhook_finds_problems(name, path, value, problem):
    payload = load(name)
    node = payload["entry"][0]["changes"][0]["value"]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    errors = validate_webhook(payload, SPEC)
    assert len(errors) == 1 and problem in errors[0], errors


def test_webhook_signature():
    body = json.dumps(load("text")).encode()
    expected = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert webhook_signature(body, "app-secret") == expected
