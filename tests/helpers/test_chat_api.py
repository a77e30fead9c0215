"""The instant chat stand-in answers the official OpenAI client as an OpenAI-compatible server
does, and refuses what such a server refuses."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.helpers.chat_api import ChatStandIn

KEY = "chat-test-key"


@pytest.fixture()
def server():
    with ChatStandIn(answer="Selamat pagi!", api_key=KEY) as stand_in:
        yield stand_in


def client(server: ChatStandIn, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=5)


def test_models_and_a_completion_through_the_openai_client(server):
    api = client(server)
    assert [m.id for m in api.models.list()] == [server.model]
    done = api.chat.completions.create(
        model=server.model, max_tokens=8,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Good morning in Malay?"}])
    assert done.choices[0].message.content == "Selamat pagi!"
    assert done.usage is not None and done.usage.completion_tokens == 2
    chat = server.calls_to("chat")
    assert [c.status for c in chat] == [200]
    assert chat[0].body["messages"][-1]["content"] == "Good morning in Malay?"
    assert server.spec_errors == []


def test_a_model_it_does_not_serve_is_404_and_a_spec_error(server):
    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(
            model="another/model", messages=[{"role": "user", "content": "hi"}])
    assert server.spec_errors == ["chat: model 'another/model' is not served"]


def test_a_wrong_key_is_401(server):
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong").models.list()
    assert server.calls_to("models") == []
    assert len(server.spec_errors) == 1


def test_a_body_that_is_no_chat_request_is_400(server):
    headers = {"Authorization": f"Bearer {KEY}"}
    answered = httpx.post(f"{server.v1}/chat/completions", headers=headers,
                          json={"model": server.model, "messages": []})
    assert answered.status_code == 400
    assert answered.json()["error"]["code"] == "invalid_request_error"
    assert server.spec_errors


def test_a_delay_holds_the_answer(server):
    server.set_delay("chat", 0.3)
    started = time.monotonic()
    done = client(server).chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= 0.3
    assert done.choices[0].message.content == "Selamat pagi!"
    assert server.in_flight("chat") == 0
