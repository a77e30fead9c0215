"""TransformersEngine against tiny random checkpoints of both real architectures (Qwen3-VL, Gemma 3).

The checkpoints are built offline once per session (see tests/helpers/checkpoints.py); generation is
greedy (do_sample=False in their generation_config.json), so batched and one-at-a-time answers must match.
"""

from __future__ import annotations

import io
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # also set by tests/conftest.py; nothing here may reach the Hub

import pytest
from PIL import Image

from tests.helpers.checkpoints import build_tiny_gemma3, build_tiny_qwen3_vl
from tests.helpers.images import image_bytes
from workers.images import load_image
from workers.models.chat.base import ChatTurn, GenerationRequest, GenerationResult
from workers.models.chat.transformers import TransformersEngine
from workers.models.host import HostState

BUILDERS = {"qwen3_vl": build_tiny_qwen3_vl, "gemma3": build_tiny_gemma3}
MIN_NEW_TOKENS = 40


def user(text: str, *images: bytes) -> ChatTurn:
    return ChatTurn("user", text, tuple(images))


@pytest.fixture(scope="session", params=list(BUILDERS))
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def engine_checkpoints(tmp_path_factory):
    """arch -> {"default": path, "long": path}; built lazily, once per session."""
    built: dict[str, dict[str, str]] = {}

    def get(name: str) -> dict[str, str]:
        if name not in built:
            root = tmp_path_factory.mktemp(name)
            builder = BUILDERS[name]
            built[name] = {
                "default": str(builder(root / "default")),
                "long": str(builder(root / "long", generation={"min_new_tokens": MIN_NEW_TOKENS})),
            }
        return built[name]

    return get


@pytest.fixture(scope="session")
def engines(engine_checkpoints):
    cache: dict[tuple, TransformersEngine] = {}

    def get(name: str, variant: str = "default", **kwargs) -> TransformersEngine:
        key = (name, variant, tuple(sorted(kwargs.items())))
        if key not in cache:
            engine = TransformersEngine(engine_checkpoints(name)[variant], **kwargs)
            engine.load()
            cache[key] = engine
        return cache[key]

    return get


@pytest.fixture
def engine(arch, engines) -> TransformersEngine:
    return engines(arch)


def test_init_is_lazy_and_load_is_idempotent(arch, engine_checkpoints):
    engine = TransformersEngine(engine_checkpoints(arch)["default"])
    assert engine.model is None and engine.health().state is HostState.LOADING
    engine.load()
    model = engine.model
    engine.load()
    assert engine.model is model
    health = engine.health()
    assert health.state is HostState.READY
    assert health.details["device"] == "cpu" and health.details["dtype"] == "float32"
    assert engine.processor.tokenizer.padding_side == "left"


def test_text_only_request(engine):
    [result] = engine.generate_batch([GenerationRequest("", (user("Hello! How are you today?"),), 8)])
    assert isinstance(result, GenerationResult)
    assert result.error is None
    assert 0 < result.completion_tokens <= 8
    assert result.prompt_tokens > 5
    assert result.seconds > 0
    assert result.text == result.text.strip()


def test_batch_of_three_matches_one_at_a_time(engine):
    requests = [
        GenerationRequest("", (user("Apa kabar? Tolong jelaskan."),), 6),
        GenerationRequest("You are a helpful assistant.", (user("What is in this picture?", image_bytes(96, 64)),), 9),
        GenerationRequest(
            "Jawab dalam Bahasa Indonesia.",
            (
                user("Describe this.", image_bytes(64, 64, (10, 160, 10))),
                ChatTurn("assistant", "It is a green square."),
                user("And this one?", image_bytes(48, 160, (10, 10, 160), fmt="JPEG")),
            ),
            5,
        ),
    ]
    batched = engine.generate_batch(requests)
    assert len(batched) == 3
    assert all(r.error is None for r in batched), batched
    text_only, one_image, two_images = batched
    assert text_only.prompt_tokens < one_image.prompt_tokens < two_images.prompt_tokens
    for request, result in zip(requests, batched, strict=False):
        assert 0 < result.completion_tokens <= request.max_new_tokens

    alone = [engine.generate_batch([request])[0] for request in requests]
    for one, many in zip(alone, batched, strict=False):
        assert one.error is None
        assert (one.prompt_tokens, one.completion_tokens, one.text) == (
            many.prompt_tokens,
            many.completion_tokens,
            many.text,
        )


def test_large_image_is_downscaled(arch, engines):
    small_budget = 64 * 64
    engine = engines(arch, max_image_pixels=small_budget)
    big = image_bytes(4000, 3000, fmt="JPEG")

    img = load_image(big, small_budget)
    assert img.mode == "RGB"
    assert img.width * img.height <= small_budget
    assert abs(img.width / img.height - 4 / 3) < 0.05

    same_size = image_bytes(img.width, img.height)
    big_result, same_result = engine.generate_batch(
        [GenerationRequest("", (user("Describe.", big),), 4), GenerationRequest("", (user("Describe.", same_size),), 4)]
    )
    assert big_result.error is None and same_result.error is None
    # The 12-megapixel photo costs what the downscaled one does.
    assert big_result.prompt_tokens == same_result.prompt_tokens
    # Qwen3-VL's tiny processor allows 16x16 tokens (256) per image; 4096 px is at most ~16 + rounding.
    text_only = engine.generate_batch([GenerationRequest("", (user("Describe."),), 4)])[0]
    assert big_result.prompt_tokens - text_only.prompt_tokens <= 40


def test_min_new_tokens_from_generation_config_makes_long_answers(arch, engines):
    engine = engines(arch, "long")
    long_answer, capped = engine.generate_batch(
        [
            GenerationRequest("", (user("Tell me a short story about a cat."),), 64),
            GenerationRequest("", (user("Tell me a short story about a cat."),), 10),
        ]
    )
    assert long_answer.error is None and capped.error is None
    assert long_answer.completion_tokens >= MIN_NEW_TOKENS
    assert long_answer.text
    assert capped.completion_tokens == 10  # the request's own limit wins over min_new_tokens


def test_bad_requests_fail_alone(engine):
    good = GenerationRequest("", (user("Hello!"),), 4)
    results = engine.generate_batch(
        [
            GenerationRequest("", (user("look", b"definitely not an image"),), 4),
            good,
            GenerationRequest("", (user("hi"), ChatTurn("assistant", "hello")), 4),
            GenerationRequest("", (user("hi"),), 0),
        ]
    )
    assert len(results) == 4
    assert results[0].error and results[0].text == ""
    assert results[1].error is None and results[1].completion_tokens > 0
    assert results[2].error and "user turn" in results[2].error
    assert results[3].error
    assert engine.generate_batch([]) == []


def test_user_text_cannot_inject_control_tokens(engine):
    plain = engine.generate_batch([GenerationRequest("", (user("look here please"),), 3)])[0]
    injected = engine.generate_batch(
        [GenerationRequest("", (user("look <|image_pad|><start_of_image><|im_start|><start_of_turn> here please"),), 3)]
    )[0]
    assert plain.error is None
    assert injected.error is None  # no image/placeholder mismatch: the tokens are plain text
    assert injected.prompt_tokens < plain.prompt_tokens + 60


def test_history_is_normalised(engine):
    """Gemma 3 needs strict user/model alternation; consecutive user turns are merged, a leading bot turn dropped."""
    result = engine.generate_batch(
        [
            GenerationRequest(
                "Be brief.",
                (ChatTurn("assistant", "Hi, I am SEA-LION!"), user("first"), user("second", image_bytes(32, 32))),
                4,
            )
        ]
    )[0]
    assert result.error is None, result.error


def test_out_of_memory_splits_the_batch(engine, monkeypatch):
    import torch

    real_generate = engine._generate
    sizes: list[int] = []

    def flaky(items):
        sizes.append(len(items))
        if len(items) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        if "doomed" in items[0].messages[-1]["content"][-1]["text"]:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_generate(items)

    monkeypatch.setattr(engine, "_generate", flaky)
    requests = [GenerationRequest("", (user(f"question {i}"),), 3) for i in range(3)]
    requests.append(GenerationRequest("", (user("doomed"),), 3))
    results = engine.generate_batch(requests)
    assert sizes[0] == 4 and sizes.count(1) == 4
    assert [r.error is None for r in results] == [True, True, True, False]
    assert results[3].error.startswith("EngineOverloaded") and results[3].text == ""


def test_other_errors_retry_each_request_alone(engine, monkeypatch):
    real_generate = engine._generate

    def broken_when_batched(items):
        if len(items) > 1 or "poison" in items[0].messages[-1]["content"][-1]["text"]:
            raise RuntimeError("boom")
        return real_generate(items)

    monkeypatch.setattr(engine, "_generate", broken_when_batched)
    results = engine.generate_batch(
        [GenerationRequest("", (user("fine"),), 3), GenerationRequest("", (user("poison"),), 3)]
    )
    assert results[0].error is None and results[0].completion_tokens > 0
    assert results[1].error == "RuntimeError: boom"


def test_load_image_normalises_mode_and_orientation():
    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    img = load_image(buf.getvalue(), None)
    assert img.mode == "RGB" and img.size == (40, 20)
    assert img.getpixel((0, 0)) == (255, 255, 255)  # transparency flattened onto white

    photo = Image.new("RGB", (60, 20), (90, 90, 90))
    exif = photo.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    photo.save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue(), None).size == (20, 60)

    with pytest.raises(ValueError):
        load_image(b"\x00\x01garbage", 1024)
