"""One contract for every model host (`workers.models.host.ModelHost`), tested once per kind of
host with real parts: the tiny checkpoints (tests/helpers/checkpoints.py, whisper.py), a real
keywords file, and the loopback stand-ins of the OpenAI-compatible servers (chat_api.py,
transcription_api.py, guard_api.py).

- in process (chat, speech, guard model; keywords): loading -> ready on warm-up, details in the
  health, and a request served; a checkpoint (or file) that cannot load -> failed, with the
  reason, and never loaded again: its requests fail at once with that reason, even once the
  folder appears;
- on a server (chat, speech, guard): a server that is down -> unavailable (the reason names it),
  ready when it comes back (warm-up asks again), unavailable again when a request finds it gone,
  and ready on the first answer after that, with no warm-up;
- the one batcher: concurrent requests of the worker's threads share batches in every
  in-process model host.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.cli.embedded_redis import free_port
from tests.helpers.audio import voice_note
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.guard_api import GuardStandIn
from tests.helpers.transcription_api import TranscriptionStandIn
from workers.audio import Clip, decode
from workers.models.chat.base import ChatTurn, GenerationRequest
from workers.models.guard.base import GuardError, GuardRequest
from workers.models.guard.formats import SeaGuardFormat
from workers.models.host import HostKind, HostState, ModelHost
from workers.models.speech.base import RecogniserError

# --- asking each kind of host --------------------------------------------------------------------

def ask_chat(host: Any, text: str = "Hello! How are you today?") -> tuple[bool, str]:
    result = host.generate(GenerationRequest("", (ChatTurn("user", text),), 4), timeout=120)
    return result.error is None, result.error or ""


@functools.cache
def clip() -> Clip:
    return decode(voice_note(1.0), 300, "audio/ogg")


def ask_speech(host: Any) -> tuple[bool, str]:
    try:
        host.transcribe(clip())
    except RecogniserError as exc:
        return False, str(exc)
    return True, ""


def ask_guard(host: Any, text: str = "Selamat pagi") -> tuple[bool, str]:
    try:
        host.check(GuardRequest(text))
    except GuardError as exc:
        return False, str(exc)
    return True, ""


ASK: dict[HostKind, Callable[[Any], tuple[bool, str]]] = {
    HostKind.CHAT: ask_chat, HostKind.SPEECH: ask_speech, HostKind.GUARD: ask_guard}


# --- hosts in process ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def whisper_path(tmp_path_factory) -> Path:
    from tests.helpers.whisper import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny", max_new_tokens=4)


@dataclass
class InProcess:
    """How to build a host of one kind on `path`, and what a good `path` holds."""

    build: Callable[[Path], ModelHost]
    install: Callable[[Path], None]  # make `path` loadable


@pytest.fixture(scope="module")
def in_process(checkpoints, whisper_path) -> dict[str, InProcess]:
    from workers.models.chat.transformers import TransformersEngine
    from workers.models.guard.keywords import KeywordsGuard
    from workers.models.guard.transformers import TransformersGuard
    from workers.models.speech.transformers import TransformersRecogniser

    def copy(source: Path) -> Callable[[Path], None]:
        return lambda path: shutil.copytree(source, path)

    return {
        "chat": InProcess(
            lambda path: TransformersEngine(str(path), device="cpu", max_batch=8, max_wait=0.3),
            copy(checkpoints["qwen3_vl"])),
        "speech": InProcess(
            lambda path: TransformersRecogniser(str(path), device="cpu", max_batch=8,
                                                max_wait=0.3),
            copy(whisper_path)),
        "guard": InProcess(
            lambda path: TransformersGuard(str(path), SeaGuardFormat(), device="cpu",
                                           max_batch=8, max_wait=0.3),
            copy(checkpoints["qwen3_vl"])),
        "keywords": InProcess(
            lambda path: KeywordsGuard(path),
            lambda path: path.write_text("forbidden recipe\n[th]\nระเบิด\n", encoding="utf-8")),
    }


@pytest.mark.parametrize("name", ["chat", "speech", "guard", "keywords"])
def test_an_in_process_host_warms_up_to_ready_and_serves(name, in_process, tmp_path):
    case = in_process[name]
    path = tmp_path / "model"
    case.install(path)
    host = case.build(path)
    assert host.health().state is HostState.LOADING  # built: nothing loaded yet
    health = host.warm_up()
    assert health.state is HostState.READY and health.reason == "", health
    assert health.details["backend"] in ("transformers", "keywords")
    if name == "keywords":
        assert health.details["rules"] == 2
    else:
        assert health.details["device"].startswith("cpu")
        assert health.details["batches"] == 0
    ok, error = ASK[host.kind](host)
    assert ok, error
    assert host.warm_up().state is HostState.READY  # idempotent
    if name != "keywords":
        assert host.health().details["batches"] >= 1  # the request went through the batcher


@pytest.mark.parametrize("name", ["chat", "speech", "guard", "keywords"])
def test_a_host_that_cannot_load_fails_with_its_reason_and_is_not_loaded_again(name, in_process,
                                                                             tmp_path):
    case = in_process[name]
    path = tmp_path / "missing"
    host = case.build(path)
    health = host.warm_up(explain=lambda exc: f"explained: {exc}")
    assert health.state is HostState.FAILED, health
    assert health.reason.startswith("explained: ") and "missing" in health.reason
    ok, error = ASK[host.kind](host)
    assert not ok and "missing" in error  # at once, with the reason
    case.install(path)  # the folder appears: a host that failed does not try again
    assert host.warm_up().state is HostState.FAILED
    ok, error = ASK[host.kind](host)
    assert not ok and "missing" in error
    assert host.health().reason == health.reason


@pytest.mark.parametrize("name", ["chat", "speech", "guard"])
def test_the_batcher_gathers_the_threads_requests_in_every_in_process_host(name, in_process,
                                                                          tmp_path):
    case = in_process[name]
    case.install(tmp_path / "model")
    host = case.build(tmp_path / "model")
    assert host.warm_up().serving
    barrier = threading.Barrier(4)
    outcomes: list = [None] * 4

    def call(i: int) -> None:
        barrier.wait()
        outcomes[i] = ASK[host.kind](host)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(ok for ok, _ in outcomes), outcomes
    details = host.health().details
    assert details["recent_batch_max"] > 1, details  # the threads' requests went together
    assert details["max_batch"] == 8


# --- hosts on a server ---------------------------------------------------------------------------

@dataclass
class Remote:
    stand_in: Callable[[], Any]
    build: Callable[[str], ModelHost]  # the host for the server at this API root


def remote_cases() -> dict[str, Remote]:
    from workers.models.chat.openai import OpenAIEngine
    from workers.models.guard.openai import OpenAIGuard
    from workers.models.speech.openai import OpenAIRecogniser

    return {
        "chat": Remote(lambda: ChatStandIn(model="sealion"),
                       lambda url: OpenAIEngine(url, "sealion", timeout=5, max_retries=0)),
        "speech": Remote(lambda: TranscriptionStandIn(api_key="asr-key"),
                         lambda url: OpenAIRecogniser(url, "whisper", "asr-key", timeout=5)),
        "guard": Remote(lambda: GuardStandIn(model="guard"),
                        lambda url: OpenAIGuard(url, "guard", SeaGuardFormat(), timeout=5)),
    }


@pytest.mark.integration
@pytest.mark.parametrize("name", ["chat", "speech", "guard"])
def test_a_host_whose_server_is_down_is_unavailable_until_it_comes_back(name):
    case = remote_cases()[name]
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    host = case.build(url)
    health = host.warm_up()
    assert health.state is HostState.UNAVAILABLE, health  # not failed: it may come back
    assert f"127.0.0.1:{port}" in health.reason and "unreachable" in health.reason
    assert health.details["base_url"] == url
    server = case.stand_in()
    server.start(port)
    try:
        assert host.warm_up().state is HostState.READY  # asked again: it answers now
        ok, error = ASK[host.kind](host)
        assert ok, error
        server.stop()  # the server goes away while the host is ready
        ok, error = ASK[host.kind](host)
        assert not ok and "unreachable" in error
        assert host.health().state is HostState.UNAVAILABLE  # the request found out
        server.start(port)  # it comes back: the first answer makes the host ready again
        ok, error = ASK[host.kind](host)
        assert ok, error
        assert host.health().state is HostState.READY
        server.stop()  # gone while idle: the worker's next warm-up (a re-check) sees it
        assert host.warm_up().state is HostState.UNAVAILABLE
    finally:
        server.stop()
    assert server.spec_errors == [], server.spec_errors


@pytest.mark.integration
@pytest.mark.parametrize("name", ["chat", "speech", "guard"])
def test_a_server_that_serves_another_model_is_unavailable_and_says_what_it_serves(name):
    case = remote_cases()[name]
    server = case.stand_in()
    server.start()
    try:
        # The same server, asked for a model it does not serve.
        host = remote_cases()[name].build(f"{server.base_url}/v1")
        host.model = "not-served"  # type: ignore[attr-defined]
        health = host.warm_up()
        assert health.state is HostState.UNAVAILABLE
        assert "'not-served' is not served" in health.reason and "it serves" in health.reason
    finally:
        server.stop()
