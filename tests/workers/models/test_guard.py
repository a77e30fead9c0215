"""Guard backends: prompt formats, answer parsing, keywords, the OpenAI-compatible client
against a loopback guard server, a tiny random Qwen3-VL guard checkpoint, and the moderation
step's fail modes and streamed-draft checks."""

from __future__ import annotations

import concurrent.futures
import io
import json
import socket
import time
from pathlib import Path

import pytest
import redis
from PIL import Image

from storage.metrics import RedisMetrics
from tests.helpers.guard_api import QWEN3GUARD, GuardStandIn
from workers.models.guard import GuardConfigError, GuardRequest, GuardUnavailable, GuardVerdict
from workers.models.guard.base import BaseGuard
from workers.models.guard.formats import Qwen3GuardFormat, SeaGuardFormat, format_named
from workers.models.guard.keywords import KeywordsGuard
from workers.models.guard.openai import OpenAIGuard
from workers.moderation import DraftChecker, Moderator

DATA = Path(__file__).resolve().parents[2] / "data" / "guard"


def jpeg(color: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="JPEG")
    return out.getvalue()


# --- formats -----------------------------------------------------------------------------------

def test_sea_guard_prompts_are_the_model_cards():
    fmt = SeaGuardFormat()
    assert fmt.turns(GuardRequest("Apa khabar?")) == [("user", "Apa khabar?", ())]
    img = jpeg()
    assert fmt.turns(GuardRequest("Ini apa?", (img,))) == [("user", "Ini apa?", (img,))]
    pair = fmt.turns(GuardRequest("Apa khabar?", (img,), response="Baik, terima kasih."))
    assert pair == [("user", "Human user:Apa khabar?\nAI assistant:Baik, terima kasih.", ())]
    alone = fmt.turns(GuardRequest("", response="Baik."))
    assert alone == [("user", "Human user:\nAI assistant:Baik.", ())]
    messages = fmt.messages(GuardRequest("Ini apa?", (img,)), image_url=lambda b: "data:x")
    assert messages == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:x"}},
        {"type": "text", "text": "Ini apa?"}]}]


@pytest.mark.parametrize(("answer", "label"), [
    ("safe", "safe"), ("Safe", "safe"), (" safe\n", "safe"), ("safe.", "safe"),
    ("unsafe", "unsafe"), ("Unsafe", "unsafe"), ("", "unsafe"), ("The text is safe", "unsafe"),
    ("ปลอดภัย", "unsafe"), ("<|im_end|>", "unsafe"),
])
def test_sea_guard_answers_are_unsafe_unless_they_start_with_safe(answer, label):
    assert SeaGuardFormat().parse(answer) == (label, ())


def test_qwen3guard_answers_are_parsed():
    recorded = json.loads((DATA / "qwen3guard_answers.json").read_text())["answers"]
    fmt = Qwen3GuardFormat()
    for entry in recorded:
        assert fmt.parse(entry["raw"]) == (entry["label"], tuple(entry["categories"])), entry
    assert fmt.turns(GuardRequest("hi", response="hello")) == [
        ("user", "hi", ()), ("assistant", "hello", ())]
    assert fmt.turns(GuardRequest("hi", (jpeg(),))) == [("user", "hi", ())]  # text only


def test_format_is_guessed_from_the_model_name():
    from bot.kernel.settings import Settings

    def guessed(**kw) -> str:
        return Settings(**kw).effective_guard_format

    assert guessed() == "sea-guard"
    assert guessed(guard_model_id="Qwen/Qwen3Guard-Gen-0.6B") == "qwen3guard"
    assert guessed(guard_backend="openai", guard_base_url="http://g/v1",
                   guard_model="qwen3-guard-gen-8b") == "qwen3guard"
    assert guessed(guard_model_id="Qwen/Qwen3Guard-Gen-4B", guard_format="sea-guard") \
        == "sea-guard"
    with pytest.raises(ValueError, match="text-only"):
        Settings(guard_backend="transformers", guard_model_id="Qwen/Qwen3Guard-Gen-4B")
    with pytest.raises(ValueError, match="GUARD_BASE_URL"):
        Settings(guard_backend="openai")
    with pytest.raises(ValueError):
        format_named("llama-guard")


def test_long_texts_are_clipped_to_their_end():
    fmt = SeaGuardFormat()
    [(_, text, _)] = fmt.turns(GuardRequest("x" * 20000 + "END"))
    assert len(text) == 8000 and text.endswith("END")


# --- keywords ----------------------------------------------------------------------------------

def test_keywords_words_regexes_and_languages(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# list\nbad word\nre:free\\s+mon(ey|ies)\n[th]\nระเบิด\n[ms]\nbodoh\n[*]\n"
                    "scam\n", encoding="utf-8")
    guard = KeywordsGuard(path)

    def label(text: str, language: str | None = None, response: str | None = None) -> str:
        return guard.check(GuardRequest(text, response=response, language=language)).label

    assert label("this is a BAD WORD indeed") == "unsafe"
    assert label("badwords are fine") == "safe"  # whole words in spaced scripts
    assert label("get FREE   money now") == "unsafe"
    assert label("วิธีทำระเบิดที่บ้าน", "th") == "unsafe"  # anywhere in Thai
    assert label("วิธีทำระเบิดที่บ้าน", "en") == "safe"  # a Thai-only rule
    assert label("kamu bodoh", "ms") == "unsafe" and label("kamu bodoh", "id") == "safe"
    assert label("a scam", "th") == "unsafe"
    assert label("hello", response="what a scam") == "unsafe"  # the answer is checked
    verdict = guard.check(GuardRequest("วิธีทำระเบิด", language="th"))
    assert verdict.categories == ("keywords:th",)


def test_keywords_file_errors(tmp_path):
    with pytest.raises(GuardConfigError):
        KeywordsGuard(tmp_path / "missing.txt").load()
    bad = tmp_path / "bad.txt"
    bad.write_text("re:(unclosed\n")
    with pytest.raises(GuardConfigError, match="line 1"):
        KeywordsGuard(bad).load()


# --- the OpenAI-compatible guard -------------------------------------------------------------

@pytest.fixture(scope="module")
def guard_server():
    with GuardStandIn(api_key="guard-key") as server:
        yield server


@pytest.fixture()
def server(guard_server):
    guard_server.reset()
    yield guard_server
    assert guard_server.spec_errors == []


def openai_guard(server: GuardStandIn, fmt: str = "sea-guard", **kw) -> OpenAIGuard:
    return OpenAIGuard(server.v1, server.model, format_named(fmt), "guard-key", **kw)


def test_openai_guard_checks_prompts_answers_and_images(server):
    guard = openai_guard(server)
    guard.load()
    assert guard.check(GuardRequest("Selamat pagi")).label == "safe"
    assert guard.check(GuardRequest("tell me UNSAFE-INPUT")).label == "unsafe"
    assert guard.check(GuardRequest("hi", response="ok")).label == "safe"
    assert guard.check(GuardRequest("say UNSAFE-ANSWER", response="anything")).label == "unsafe"
    assert guard.check(GuardRequest("Ini apa?", (jpeg("red"),))).label == "unsafe"
    assert guard.check(GuardRequest("Ini apa?", (jpeg("blue"),))).label == "safe"
    checks = server.checks()
    assert [c.side for c in checks] == ["input", "input", "output", "output", "input", "input"]
    assert [c.images for c in checks][-2:] == [1, 1]
    assert checks[2].prompt == "hi" and checks[2].response == "ok"


def test_openai_guard_qwen3guard_format(server):
    server.format = QWEN3GUARD
    try:
        guard = openai_guard(server, "qwen3guard")
        verdict = guard.check(GuardRequest("UNSAFE-INPUT", (jpeg(),)))
        assert (verdict.label, verdict.categories) == ("unsafe", ("Violent",))
        assert guard.check(GuardRequest("hi", response="hello")).label == "safe"
        assert [c.images for c in server.checks()] == [0, 0]  # Qwen3Guard reads no images
    finally:
        server.format = "sea-guard"


def test_openai_guard_down_or_unreachable_is_unavailable(server):
    guard = openai_guard(server, timeout=2)
    server.down = True
    with pytest.raises(GuardUnavailable, match="503"):
        guard.check(GuardRequest("hi"))
    assert len(server.checks()) == 2  # a 5xx is tried once more
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = OpenAIGuard(f"http://127.0.0.1:{port}/v1", "m", format_named("sea-guard"))
    assert closed.warm_up().state == "unavailable"  # the checks still go out: GUARD_FAIL
    with pytest.raises(GuardUnavailable, match="unreachable"):
        closed.check(GuardRequest("hi"))
    server.down = False
    server.set_delay("chat", 3.0)
    with pytest.raises(GuardUnavailable, match="timed out"):
        openai_guard(server, timeout=0.5).check(GuardRequest("hi"))
    server.set_delay("chat", 0.0)


# --- the moderation step -----------------------------------------------------------------------

class _Scripted(BaseGuard):
    def __init__(self, *verdicts: str | Exception) -> None:
        self.verdicts = list(verdicts)
        self.requests: list[GuardRequest] = []

    def check(self, request: GuardRequest) -> GuardVerdict:
        self.requests.append(request)
        item = self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]
        if isinstance(item, Exception):
            raise item
        return GuardVerdict(item, ("Violent",) if item != "safe" else ())  # type: ignore[arg-type]


@pytest.fixture()
def metrics(redis_server):
    client = redis.Redis.from_url(redis_server.url[:-2] + "/12")
    client.flushdb()
    yield RedisMetrics(client)
    client.flushdb()


def test_fail_closed_and_open_are_counted(metrics):
    down = _Scripted(GuardUnavailable("down"))
    closed = Moderator(down, fail="closed", metrics=metrics)
    decision = closed.check_input("hi")
    assert decision is not None and decision.blocked and decision.label == "error"
    opened = Moderator(down, fail="open", metrics=metrics)
    decision = opened.check_output("hi", "answer")
    assert decision is not None and not decision.blocked and decision.failed
    assert metrics.counter("guard_failures") == {'{"mode":"closed","side":"input"}': 1.0,
                                                 '{"mode":"open","side":"output"}': 1.0}
    assert metrics.counter("guard_decisions") == {'{"label":"error","side":"input"}': 1.0,
                                                  '{"label":"error","side":"output"}': 1.0}
    assert metrics.histogram("guard_seconds")['{"side":"input"}']["count"] == 1


def test_labels_controversial_and_switches(metrics):
    mixed = _Scripted("controversial")
    assert not Moderator(mixed, metrics=metrics).check_input("x").blocked
    strict = Moderator(mixed, block_controversial=True, metrics=metrics).check_input("x")
    assert strict.blocked and strict.categories == ("Violent",)
    assert Moderator(_Scripted("unsafe")).check_input("x").blocked
    assert Moderator(_Scripted("safe")).check_input("x").blocked is False
    off = Moderator(_Scripted("unsafe"), check_input=False, check_output=False)
    assert off.check_input("x") is None and off.check_output("x", "y") is None
    assert Moderator(None).check_input("x") is None
    assert Moderator(_Scripted("unsafe")).check_output("x", "  ") is None  # nothing to check
    assert metrics.counter("guard_decisions")['{"label":"controversial","side":"input"}'] == 2


def test_refusal_is_localized_or_the_operators():
    from bot.kernel.texts import Text, text

    assert Moderator(None).refusal("th") == text(Text.GUARD_REFUSAL, "th")
    assert Moderator(None, blocked_reply="No.").refusal("th") == "No."


def test_draft_checker_shows_only_checked_text_and_clears_a_flagged_draft():
    shown: list[str] = []
    guard = _Scripted("safe")
    checker = DraftChecker(Moderator(guard), "prompt", "en", shown.append)
    checker.offer("Once upon")
    deadline = time.monotonic() + 5
    while shown != ["Once upon"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert shown == ["Once upon"]
    guard.verdicts = ["unsafe"]
    checker.offer("Once upon a bad time")
    while not checker.flagged and time.monotonic() < deadline:
        time.sleep(0.01)
    checker.offer("Once upon a bad time, more")  # nothing after a flag is shown
    time.sleep(0.1)
    checker.close()
    assert checker.flagged and shown == ["Once upon", ""]
    assert [r.response for r in guard.requests] == ["Once upon", "Once upon a bad time"]
    assert [d.side for d in checker.decisions] == ["draft", "draft"]


# --- the transformers guard with a tiny random Qwen3-VL checkpoint -----------------------------

@pytest.fixture(scope="module")
def guard_checkpoint(tmp_path_factory) -> Path:
    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    path = build_tiny_qwen3_vl(tmp_path_factory.mktemp("guard") / "sea-guard",
                               generation={"do_sample": True, "temperature": 0.7})
    (path / "README.md").write_text("Use `Human user:{prompt}\\nAI assistant:{response}`.")
    return path


def test_transformers_guard_loads_builds_prompts_batches_and_fails_closed(guard_checkpoint,
                                                                          caplog):
    from workers.models.guard.transformers import TransformersGuard

    guard = TransformersGuard(str(guard_checkpoint), SeaGuardFormat(), device="cpu",
                              max_batch=8, max_wait=0.2)
    assert guard.engine is None  # nothing loaded before load()
    guard.load()
    assert "does not show the SEA-Guard prompt" not in caplog.text
    assert guard.engine.model.generation_config.do_sample is False  # temperature 0

    # The prompt the model sees: one user turn, no system prompt, the card's layout.
    request = guard._request(GuardRequest("Apa khabar?", response="Baik."))
    rendered = guard.engine.processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": request.turns[0].text}]}]],
        add_generation_prompt=True, tokenize=False)[0]
    assert "Human user:Apa khabar?\nAI assistant:Baik." in rendered
    assert "<|im_start|>system" not in rendered

    requests = [GuardRequest(f"Soalan {i}", (jpeg(),) if i % 2 else ()) for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        verdicts = list(pool.map(guard.check, requests))
    assert max(guard.engine.batcher.batch_sizes) > 1  # the threads' checks went out together
    for verdict in verdicts:
        # Random weights write noise: read as unsafe unless it happens to start with "safe".
        expected = "safe" if verdict.raw.strip().lower().startswith("safe") else "unsafe"
        assert verdict.label == expected
    assert any(v.label == "unsafe" for v in verdicts)
    # Greedy: the same request gets the same answer.
    assert guard.check(requests[0]).raw == verdicts[0].raw


def test_transformers_guard_beside_the_chat_model(guard_checkpoint, checkpoints):
    """The inference worker's layout: the chat engine and the guard in one process, each
    batched, called from many threads at once."""
    from workers.models.chat.base import ChatTurn, GenerationRequest
    from workers.models.chat.transformers import TransformersEngine
    from workers.models.guard.transformers import TransformersGuard

    chat = TransformersEngine(str(checkpoints["qwen3_vl"]), device="cpu", max_batch=8,
                              max_wait=0.1)
    chat.load()
    guard = TransformersGuard(str(guard_checkpoint), SeaGuardFormat(), device="cpu",
                              max_wait=0.1)
    guard.load()

    def turn(i: int) -> tuple[str, str]:
        verdict = guard.check(GuardRequest(f"Question {i}"))
        answer = chat.generate(GenerationRequest(
            system="", turns=(ChatTurn("user", f"Question {i}"),), max_new_tokens=4)).text
        return verdict.label, answer

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(turn, range(4)))
    assert len(results) == 4 and all(label in ("safe", "unsafe") for label, _ in results)
    assert sum(guard.engine.batcher.batch_sizes) >= 4 and sum(chat.batcher.batch_sizes) >= 4
    assert guard.engine.batcher is not chat.batcher  # each model batches its own requests


def test_transformers_guard_warns_when_the_card_shows_another_prompt(guard_checkpoint,
                                                                     tmp_path, caplog):
    import shutil

    from workers.models.guard.transformers import TransformersGuard

    other = tmp_path / "other"
    shutil.copytree(guard_checkpoint, other)
    (other / "README.md").write_text("Prompt: <BEGIN CONVERSATION> ...")
    TransformersGuard(str(other), SeaGuardFormat(), device="cpu").load()
    assert "does not show the SEA-Guard prompt" in caplog.text


def test_transformers_guard_that_cannot_load_is_unavailable(tmp_path):
    from workers.models.guard.transformers import TransformersGuard

    guard = TransformersGuard(str(tmp_path / "nothing"), SeaGuardFormat(), device="cpu")
    with pytest.raises(GuardUnavailable):
        guard.check(GuardRequest("hi"))
    assert guard.health().state == "failed" and "did not load" in guard.health().reason
    with pytest.raises(GuardUnavailable, match="did not load"):
        guard.check(GuardRequest("hi"))  # at once, with the reason: no second load




def test_the_inference_workers_runtime_loads_the_guard_beside_the_chat_model(
        guard_checkpoint, checkpoints, redis_server):
    """GUARD_BACKEND=transformers as the composition root builds it: the guard is a
    TransformersGuard on the same engine code, and a check of its noise fails closed."""
    from bot.composition import Services
    from bot.kernel.settings import Settings
    from workers.models.guard.transformers import TransformersGuard

    rt = Services(Settings(_env_file=None, redis_url=redis_server.url[:-2] + "/12",
                          model_id=str(checkpoints["qwen3_vl"]), engine_device="cpu",
                          guard_backend="transformers", guard_model_id=str(guard_checkpoint)))
    guard = rt.moderator.guard
    assert isinstance(guard, TransformersGuard) and guard.format.name == "sea-guard"
    rt.models.chat.load()  # the chat model, as the worker's warm-up loads it
    assert rt.models.guard is guard
    guard.load()
    assert rt.turns.stages.moderation.moderator is rt.moderator
    decision = rt.moderator.check_input("Selamat pagi, apa khabar?")
    assert decision is not None and decision.label in ("safe", "unsafe")
    assert decision.blocked == (decision.label == "unsafe")
