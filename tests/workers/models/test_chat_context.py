"""History trimmed by real token counts (the checkpoint's own processor) to fit the context."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

os.environ["HF_HUB_OFFLINE"] = "1"

from workers.models.chat.base import ChatTurn, GenerationRequest  # noqa: E402
from workers.models.chat.transformers import TransformersEngine  # noqa: E402


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("ctx"), generation={"max_new_tokens": 4})


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(out, format="JPEG")
    return out.getvalue()


def conversation(exchanges: int) -> tuple[ChatTurn, ...]:
    turns: list[ChatTurn] = []
    for i in range(exchanges):
        turns.append(ChatTurn("user", f"Question {i}: " + "berapa harga beras di pasar " * 6,
                              images=(photo(),) if i == 0 else ()))
        turns.append(ChatTurn("assistant", f"Answer {i}: " + "harganya naik sedikit " * 6))
    turns.append(ChatTurn("user", "Dan yang terakhir, bagaimana cuacanya hari ini?"))
    return tuple(turns)


def test_the_oldest_turns_go_until_the_prompt_fits(qwen):
    request = GenerationRequest(system="Be brief.", turns=conversation(12), max_new_tokens=8)
    full = TransformersEngine(qwen)
    full.load()
    untrimmed = full._prepare(0, request).messages
    full_length = full.prompt_tokens(untrimmed)

    budget = 400
    engine = TransformersEngine(qwen, max_context_tokens=budget)
    engine.load()
    kept = engine._prepare(0, request).messages
    assert full_length > budget
    assert engine.prompt_tokens(kept) <= budget - 8
    assert kept[0]["role"] == "system" and kept[1]["role"] == "user"
    assert kept[-1]["content"][-1]["text"] == request.turns[-1].text
    assert len(kept) < len(untrimmed)
    # the old photo went with its turn, and generation still works within the budget
    assert not any(part["type"] == "image" for m in kept for part in m["content"])
    [result] = engine.generate_batch([request])
    assert result.error is None and result.prompt_tokens <= budget - 8


def test_a_short_conversation_is_left_alone(qwen):
    request = GenerationRequest(system="", turns=conversation(1), max_new_tokens=8)
    engine = TransformersEngine(qwen, max_context_tokens=4096)
    engine.load()
    messages = engine._prepare(0, request).messages
    assert len(messages) == 3 and any(p["type"] == "image" for p in messages[0]["content"])
