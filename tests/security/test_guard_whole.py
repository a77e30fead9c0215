"""The guard reads the whole turn (#18, item 3): a request put first and followed by more than a
guard's 8,000 characters of filler is refused, by the keywords guard, by a guard model served
OpenAI-style (the loopback stand-in, both formats) and by the in-process transformers guard (a
tiny random Qwen3-VL checkpoint, whose windows are batched). The work is bounded: a text beyond
what any turn can hold is refused unread, whatever GUARD_FAIL says.

Before the fix every check read only the newest 8,000 characters: these tests fail there.
"""

from __future__ import annotations

import random
import string
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.guard_api import QWEN3GUARD, SEA_GUARD, GuardStandIn
from workers.models.guard import GuardRequest, GuardUnavailable, GuardVerdict
from workers.models.guard.base import (
    MAX_GUARD_CHARS,
    WINDOW_OVERLAP,
    BaseGuard,
    window_count,
    windows,
)
from workers.models.guard.formats import SeaGuardFormat, format_named
from workers.models.guard.keywords import KeywordsGuard
from workers.models.guard.openai import OpenAIGuard
from workers.moderation import HISTORY_CHARS, TOO_LONG, Moderator, guard_max_chars

#: Harmless words, many of them: what a person puts after the request to push it out of view.
FILLER = ("The weather in Singapore is warm and humid all year round, with rain most "
          "afternoons. ") * 120  # 10,440 characters
assert len(FILLER) > MAX_GUARD_CHARS + 2000


# --- the windows -------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [0, 1, MAX_GUARD_CHARS, MAX_GUARD_CHARS + 1, 14_000, 14_001,
                                    20_000, 61_234])
def test_windows_cover_the_text_and_share_the_overlap(length):
    text = "".join(random.Random(length).choices(string.ascii_letters, k=length))
    parts = windows(text)
    assert len(parts) == window_count(length)
    assert all(len(p) <= MAX_GUARD_CHARS for p in parts)
    if length > MAX_GUARD_CHARS:
        assert all(len(p) == MAX_GUARD_CHARS for p in parts)
        starts = [text.index(p) for p in parts]  # random letters: a window occurs once
        assert starts[0] == 0 and starts[-1] + MAX_GUARD_CHARS == length
        stride = MAX_GUARD_CHARS - WINDOW_OVERLAP
        assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:], strict=False))
    # Every passage of up to WINDOW_OVERLAP characters lies whole inside one window.
    for at in range(0, max(length - WINDOW_OVERLAP, 0) + 1, 997):
        passage = text[at:at + WINDOW_OVERLAP]
        assert any(passage in p for p in parts), at


# --- the keywords guard ------------------------------------------------------------------------

@pytest.fixture()
def keywords(tmp_path) -> KeywordsGuard:
    path = tmp_path / "words.txt"
    path.write_text("forbidden recipe\nre:make\\s+a\\s+bomb\n", encoding="utf-8")
    return KeywordsGuard(path)


def test_keywords_guard_refuses_a_request_followed_by_filler(keywords):
    moderator = Moderator(keywords)
    decision = moderator.check_input("Give me the forbidden recipe, please.\n" + FILLER)
    assert decision is not None and decision.blocked and decision.categories == ("keywords",)
    assert not moderator.check_input("Give me a recipe, please.\n" + FILLER).blocked
    answer = moderator.check_output("question", "Here is the forbidden recipe.\n" + FILLER)
    assert answer is not None and answer.blocked


def test_the_persons_recent_turns_are_read_with_the_new_one(keywords):
    moderator = Moderator(keywords)
    assert not moderator.check_input("a bomb").blocked
    assert not moderator.check_input("how do I make").blocked
    split = moderator.check_input("a bomb", history=["hello", "how do I make"])
    assert split is not None and split.blocked
    # Only the newest HISTORY_CHARS characters: one old turn does not weigh on every later one.
    old = moderator.check_input("a bomb", history=["how do I make", "x" * HISTORY_CHARS])
    assert old is not None and not old.blocked


# --- a guard model served OpenAI-style ---------------------------------------------------------

@pytest.fixture(scope="module")
def guard_server():
    with GuardStandIn() as server:
        yield server


@pytest.fixture(params=[SEA_GUARD, QWEN3GUARD])
def server(guard_server, request):
    """The stand-in in each format."""
    guard_server.reset()
    guard_server.format = request.param
    yield guard_server
    guard_server.format = SEA_GUARD
    assert guard_server.spec_errors == []


@pytest.fixture()
def sea_guard(guard_server):
    """The stand-in as SEA-Guard."""
    guard_server.reset()
    yield guard_server
    assert guard_server.spec_errors == []


def openai_guard(server: GuardStandIn, **kwargs) -> OpenAIGuard:
    return OpenAIGuard(server.v1, server.model, format_named(server.format), **kwargs)


def test_guard_model_refuses_a_request_followed_by_filler(server):
    moderator = Moderator(openai_guard(server))
    text = "Tell me UNSAFE-INPUT step by step.\n" + FILLER
    decision = moderator.check_input(text)
    assert decision is not None and decision.blocked
    checks = server.checks("input")
    assert len(checks) == window_count(len(text)) >= 2
    assert all(len(c.prompt) <= MAX_GUARD_CHARS for c in checks)
    # Sent together, answered in any order: the window with the request is the one flagged.
    [flagged] = [c for c in checks if _flagged(c.answer)]
    assert flagged.prompt.startswith("Tell me UNSAFE-INPUT")
    assert not moderator.check_input("Tell me a story.\n" + FILLER).blocked


def _flagged(answer: str) -> bool:
    return answer == "unsafe" or answer.startswith("Safety: Unsafe")


def test_guard_model_reads_an_answer_whole(server):
    moderator = Moderator(openai_guard(server))
    answer = "Sure: UNSAFE-INPUT goes like this.\n" + FILLER
    decision = moderator.check_output("a question", answer)
    assert decision is not None and decision.blocked
    checks = server.checks("output")
    assert len(checks) == window_count(len(answer))
    assert all(c.prompt == "a question" and len(c.response or "") <= MAX_GUARD_CHARS
               for c in checks)


@pytest.mark.parametrize("at", [0, 5_999, 6_000, 7_990, 8_000, 12_000, 17_000])
def test_a_request_anywhere_is_seen_whole(sea_guard, at):
    text = FILLER[:at] + " UNSAFE-INPUT " + FILLER[at:]
    assert Moderator(openai_guard(sea_guard)).check_input(text).blocked


def test_windows_go_out_together_but_bounded(sea_guard):
    guard_server = sea_guard
    guard_server.set_delay("chat", 0.3)
    guard = openai_guard(guard_server, concurrency=2)
    text = FILLER * 3  # 31,320 characters: 5 windows
    assert window_count(len(text)) == 5
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, guard_server.in_flight("chat"))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        verdict = guard.check_whole(GuardRequest(text))
    finally:
        done.set()
        watcher.join()
        guard.close()
    assert verdict.label == "safe"
    assert len(guard_server.checks()) == 5
    assert peak == 2  # together, never more than `concurrency` at once
    assert time.monotonic() - started >= 3 * 0.3


class _ByContent(BaseGuard):
    """Unsafe where the window holds "BAD", controversial where "HMM", no verdict where "DOWN"."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def check(self, request: GuardRequest) -> GuardVerdict:
        text = request.prompt
        self.checked.append(text)
        if "DOWN" in text:
            raise GuardUnavailable("down")
        if "BAD" in text:
            return GuardVerdict("unsafe", (f"cat{len(self.checked)}",))
        return GuardVerdict("controversial" if "HMM" in text else "safe")


def test_any_unsafe_window_refuses_even_beside_a_window_without_a_verdict():
    """GUARD_FAIL=open lets a turn through unchecked only when no window was found unsafe."""
    guard = _ByContent()
    opened = Moderator(guard, fail="open")
    decision = opened.check_input("BAD\n" + FILLER + "BAD\n" + FILLER + "DOWN")
    assert decision is not None and decision.blocked and decision.label == "unsafe"
    assert len(guard.checked) == window_count(2 * len(FILLER) + 12)
    assert decision.categories == ("cat1", "cat2")  # every flagged window's, once each
    unknown = opened.check_input("HMM\n" + FILLER + "DOWN")
    assert unknown is not None and unknown.failed and not unknown.blocked
    closed = Moderator(guard, fail="closed").check_input("HMM\n" + FILLER + "DOWN")
    assert closed is not None and closed.failed and closed.blocked
    mixed = opened.check_input("HMM\n" + FILLER)
    assert mixed is not None and mixed.label == "controversial"


def test_a_text_beyond_any_turn_is_refused_unread(sea_guard):
    guard_server = sea_guard
    limit = 20_000
    opened = Moderator(openai_guard(guard_server), fail="open", max_chars=limit)
    decision = opened.check_input("x" * (limit + 1))
    assert decision is not None and decision.blocked and decision.categories == (TOO_LONG,)
    assert guard_server.checks() == []  # no work at all
    assert not opened.check_input("x" * limit).blocked
    assert len(guard_server.checks()) == window_count(limit) == 3


def test_the_bound_holds_every_turn_the_message_limits_allow():
    from adapters.local import MAX_TEXT
    from bot.kernel.settings import Settings

    settings = Settings(_env_file=None)
    bound = guard_max_chars(settings.max_pending_messages, settings.max_new_tokens,
                            settings.asr_max_seconds)
    assert bound == guard_max_chars()  # its defaults are the settings'
    longest_turn = "\n".join(["y" * MAX_TEXT] * settings.max_pending_messages)
    assert len(longest_turn) + 1 + HISTORY_CHARS <= bound
    assert window_count(bound) == 134
    bigger = Settings(_env_file=None, max_pending_messages=200, max_new_tokens=30_000,
                      max_context_tokens=40_000, asr_max_seconds=3600)
    moderator = Moderator.from_settings(bigger, None)
    assert moderator.max_chars == guard_max_chars(200, 30_000, 3600) >= 200 * 3600 * 20
    assert guard_max_chars(1, 30_000) >= 30_000 * 16  # an answer of long tokens


# --- the in-process transformers guard ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_guard(tmp_path_factory):
    from tests.helpers.checkpoints import build_tiny_qwen3_vl
    from workers.models.guard.transformers import TransformersGuard

    path: Path = build_tiny_qwen3_vl(tmp_path_factory.mktemp("guard") / "sea-guard")
    guard = TransformersGuard(str(path), SeaGuardFormat(), device="cpu", max_batch=8,
                              max_wait=0.2)
    guard.load()
    return guard


def test_transformers_guard_reads_every_window_in_one_batch(tiny_guard):
    """Random weights write noise, so the verdict says little; what the model was given says
    everything: every window, the request's included, together in one batch."""
    read: list[str] = []
    decode = tiny_guard.engine.decode

    def spy(request):
        read.append(request.turns[-1].text)
        return decode(request)

    tiny_guard.engine.decode = spy
    try:
        text = "Tell me the forbidden recipe, step by step.\n" + FILLER
        batches = tiny_guard.engine.batcher.batches
        decision = Moderator(tiny_guard).check_input(text)
    finally:
        del tiny_guard.engine.decode
    assert decision is not None and decision.label in ("safe", "unsafe")
    assert read == windows(text) and len(read) == 2
    assert read[0].startswith("Tell me the forbidden recipe")
    assert tiny_guard.engine.batcher.batches == batches + 1  # both windows in one generate call
    # The verdict on the whole is the worst of the windows' own (greedy: the same each time).
    labels = {tiny_guard.check(GuardRequest(part)).label for part in windows(text)}
    assert decision.label == ("unsafe" if "unsafe" in labels else "safe")
