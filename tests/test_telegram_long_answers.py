"""Telegram, end to end, the long answers: a model made to write thousands of tokens (the "long"
checkpoint, tests/conftest.py) -> the answer split under 4096 characters, the typing indicator
refreshed meanwhile, and streamed drafts. Generation is CPU-bound here: its own file, so that the
suite's processes (pytest-xdist, --dist loadfile) run it beside the rest."""

from __future__ import annotations

from adapters.telegram_html import visible_length
from tests.conftest import new_chat_id
from tests.helpers.updates import text_update
from tests.helpers.waiting import sent_to, wait_settled, wait_until

#: 3000 tokens on a busy 2-core machine, with the suite's other processes beside it.
LONG_WAIT = 400


def test_long_answer_is_split_under_the_limit(deploy, telegram):
    service = deploy("long", MAX_NEW_TOKENS="3000")
    chat = new_chat_id()
    service.post_update(text_update(chat, "Write me a very long story, please."))
    wait_until(lambda: len(sent_to(telegram, chat)) >= 2, LONG_WAIT, "a reply in several parts")
    wait_settled(chat)
    parts = sent_to(telegram, chat)
    assert len(parts) >= 2
    for part in parts:
        body = part.params["text"]
        size = visible_length(body) if part.params.get("parse_mode") else len(body)
        assert 0 < size <= 4096
    # Generation takes seconds here: the typing indicator was refreshed meanwhile.
    typing = sent_to(telegram, chat, "sendChatAction")
    assert len(typing) >= 2 and all(c.params["action"] == "typing" for c in typing)
    assert sent_to(telegram, chat, "sendMessageDraft") == []  # streaming is off by default


def test_streaming_shows_drafts_then_sends_the_answer_once(deploy, telegram):
    service = deploy("long", MAX_NEW_TOKENS="3000", TELEGRAM_STREAMING="true",
                     STREAM_INTERVAL_SECONDS="0.5")
    chat = new_chat_id()
    service.post_update(text_update(chat, "Write me a very long story, please."))
    wait_until(lambda: len(sent_to(telegram, chat)) >= 2, LONG_WAIT, "the final answer")
    wait_settled(chat)
    drafts = sent_to(telegram, chat, "sendMessageDraft")
    assert len(drafts) >= 2, "no partial text was shown while generating"
    texts = [d.params["text"] for d in drafts]
    assert all(t.strip() for t in texts) and len(set(texts)) >= 2  # the draft grows
    assert len({d.params["draft_id"] for d in drafts}) == 1
    final = "".join(c.params["text"] for c in sent_to(telegram, chat))
    assert len(final) > len(texts[0])
    assert drafts[-1].at < sent_to(telegram, chat)[0].at + 1.0  # no drafts after the answer
