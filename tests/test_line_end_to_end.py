"""LINE, end to end: webhook -> real Redis and Celery worker -> tiny model -> stand-in API."""

from __future__ import annotations

import itertools

from bot.kernel.texts import Text, text
from tests.helpers.payloads import line_event, load
from tests.helpers.waiting import wait_count, wait_settled
from tests.test_telegram_end_to_end import jpeg

_users = itertools.count(1)


def new_user() -> str:
    return f"U{next(_users):032x}"


def wait_texts(line, to: str, count: int, timeout: float = 60):
    return wait_count(lambda: line.sent_texts(to), to, count, timeout)


def test_verify_button_is_answered_200(qwen_service, line):
    assert qwen_service.post_line(load("line", "verify")).status_code == 200


def test_text_is_answered_once_by_reply_with_a_loading_indicator(qwen_service, line):
    user = new_user()
    body = line_event("text", user, reply_token=line.issue_reply_token(user))
    assert qwen_service.post_line(body).status_code == 200
    [answer] = wait_texts(line, user, 1)
    assert answer.strip()
    [reply] = line.calls_to("reply")
    assert reply.status == 200 and line.calls_to("push") == []
    [loading] = line.calls_to("loading")[:1]
    assert loading.body["chatId"] == user and loading.body["loadingSeconds"] % 5 == 0


def test_standby_event_is_not_answered_and_the_answered_message_is_marked_read(qwen_service,
                                                                              line):
    """In standby another module holds the chat: nothing goes out for it (not even a loading
    indicator). The active message after it is answered once and marked read with its token; the
    stand-in saw only that answer's calls, so the standby event sent nothing."""
    user = new_user()
    standby_token = line.issue_reply_token(user)
    standby = line_event("text", user, reply_token=standby_token, markAsReadToken="standby-token")
    standby["events"][0]["mode"] = "standby"
    assert qwen_service.post_line(standby).status_code == 200
    active = line_event("text", user, reply_token=line.issue_reply_token(user),
                        markAsReadToken=f"read-{user}")
    assert qwen_service.post_line(active).status_code == 200
    line.wait_for("mark_as_read", 1, timeout=60)
    assert line.marked_read() == [f"read-{user}"]
    assert len(line.sent_texts(user)) == 1
    [reply] = line.calls_to("reply")
    assert reply.body["replyToken"] == active["events"][0]["replyToken"] != standby_token
    assert line.calls_to("push") == []
    assert {c.body["chatId"] for c in line.calls_to("loading")} == {user}


def test_image_content_is_fetched_and_answered(qwen_service, line):
    user = new_user()
    body = line_event("image", user, reply_token=line.issue_reply_token(user))
    line.add_content(body["events"][0]["message"]["id"], jpeg(color="teal"))
    assert qwen_service.post_line(body).status_code == 200
    wait_texts(line, user, 1)
    assert len(line.calls_to("content")) == 1


def test_image_set_becomes_one_turn(qwen_service, line):
    user = new_user()
    first = line_event("image_set_1", user, reply_token=line.issue_reply_token(user))
    second = line_event("image_set_2", user, reply_token=line.issue_reply_token(user))
    for body in (first, second):
        line.add_content(body["events"][0]["message"]["id"], jpeg(color="olive"))
        assert qwen_service.post_line(body).status_code == 200
    wait_texts(line, user, 1)
    assert len(line.calls_to("content")) == 2


def test_redelivered_event_gets_one_reply(qwen_service, line):
    user = new_user()
    body = line_event("text", user, reply_token=line.issue_reply_token(user))
    qwen_service.post_line(body)
    body["events"][0]["deliveryContext"]["isRedelivery"] = True
    qwen_service.post_line(body)
    wait_texts(line, user, 1)


def test_forged_or_missing_signature_is_refused(qwen_service, line):
    user = new_user()
    body = line_event("text", user, reply_token=line.issue_reply_token(user))
    assert qwen_service.post_line(body, signature=None).status_code == 401
    assert qwen_service.post_line(body, signature="Zm9yZ2Vk").status_code == 400
    wait_settled(user)
    assert line.sent_texts(user) == [] and line.calls_to("loading") == []


def test_expired_reply_token_falls_back_to_one_push(qwen_service, line):
    user = new_user()
    token = line.issue_reply_token(user)
    line.expire_reply_token(token)
    qwen_service.post_line(line_event("text", user, reply_token=token))
    [answer] = wait_texts(line, user, 1)
    [push] = [c for c in line.calls_to("push") if c.status == 200]
    assert push.body["to"] == user and push.headers.get("x-line-retry-key")


def test_a_retried_push_is_not_sent_twice(qwen_service, line):
    user = new_user()
    token = line.issue_reply_token(user)
    line.expire_reply_token(token)
    line.fail_next("push", 500)  # LINE fails: the task retries with the same retry key
    qwen_service.post_line(line_event("text", user, reply_token=token))
    wait_texts(line, user, 1, timeout=60)
    statuses = [c.status for c in line.calls_to("push")]
    assert statuses == [500, 200]
    keys = {c.headers["x-line-retry-key"] for c in line.calls_to("push")}
    assert len(keys) == 1


def test_group_without_mention_is_not_answered_with_mention_is(qwen_service, line):
    group = f"C{next(_users):032x}"
    silent = line_event("group_no_mention", new_user(), group_id=group,
                        reply_token=line.issue_reply_token(group))
    assert qwen_service.post_line(silent).status_code == 200
    wait_settled(group)
    assert line.sent_texts(group) == []
    asked = line_event("group_mention", new_user(), group_id=group,
                       reply_token=line.issue_reply_token(group))
    qwen_service.post_line(asked)
    wait_texts(line, group, 1)
    assert line.calls_to("loading") == []  # only in one-to-one chats


def test_follow_greets_in_the_profile_language(qwen_service, line):
    user = new_user()
    line.set_profile(user, "Somchai", language="th")
    qwen_service.post_line(line_event("follow", user, reply_token=line.issue_reply_token(user)))
    [greeting] = wait_texts(line, user, 1)
    assert greeting == text(Text.GREETING, "th")


def test_sticker_gets_a_polite_notice(qwen_service, line):
    user = new_user()
    line.set_profile(user, "Linh", language="vi")
    qwen_service.post_line(line_event("sticker", user, reply_token=line.issue_reply_token(user)))
    [notice] = wait_texts(line, user, 1)
    assert notice == text(Text.UNSUPPORTED, "vi")


def test_unfollow_is_not_answered(qwen_service, line):
    user = new_user()
    assert qwen_service.post_line(line_event("unfollow", user)).status_code == 200
    wait_settled(user)
    assert line.calls_to("reply") == [] and line.calls_to("push") == []
