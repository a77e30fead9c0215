"""OpenAIEngine against a real OpenAI-compatible server on loopback: ``transformers serve``.

The server is the ``transformers`` CLI's own (``transformers serve``), run as a subprocess on a tiny
random-weight Qwen3-VL checkpoint (tests/helpers/checkpoints.py), fully offline. ``transformers serve``
loads models by Hub id and lists in ``/v1/models`` only what is in the Hub cache, so the checkpoint is
written into a private cache laid out as the Hub client lays it out (models--org--name/snapshots/<rev>,
refs/main) and served as ``sealion-test/tiny-qwen3-vl`` with ``HF_HUB_CACHE`` pointing there and
``HF_HUB_OFFLINE=1``. It accepts ``image_url`` content parts (data URLs) for vision-language models.

Failures the real server doesn't produce on demand (500s, 429 with Retry-After, slowness) come from a small
fault-injecting HTTP proxy in front of it, which also records what the engine sent.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # also set by tests/conftest.py; nothing here may reach the Hub

import httpx
import pytest
from PIL import Image

from tests.helpers.images import image_bytes
from tests.helpers.processes import stop_process
from workers.models.chat.base import ChatTurn, EngineError, GenerationRequest
from workers.models.chat.openai import OpenAIEngine
from workers.models.host import HostState

ROOT = Path(__file__).resolve().parents[3]
MODEL = "sealion-test/tiny-qwen3-vl"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def user(text: str, *images: bytes) -> ChatTurn:
    return ChatTurn("user", text, tuple(images))


#: Its start imports torch and loads the model: slow beside other test processes on 2 cores.
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory) -> Path:
    """A private Hub cache holding the tiny Qwen3-VL checkpoint as ``sealion-test/tiny-qwen3-vl``."""
    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    cache = tmp_path_factory.mktemp("hub")
    repo = cache / ("models--" + MODEL.replace("/", "--"))
    build_tiny_qwen3_vl(repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    (repo / "blobs").mkdir()
    return cache


@pytest.fixture(scope="session")
def server(hub_cache, tmp_path_factory):
    """``transformers serve`` on a free loopback port; yields its API base URL (``.../v1``)."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs fastapi, uvicorn and openai: pip install 'transformers[serving]'")
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_CACHE=str(hub_cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", MODEL,
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"transformers serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start in {STARTUP_SECONDS} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        stop_process(process)


class FaultProxy:
    """Forwards to the real server, first answering with queued faults; records requests and concurrency."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")  # http://host:port (the proxy keeps the request path)
        self.faults: collections.deque = collections.deque()  # (status, headers, body) or ("sleep", s)
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._handle(b"")

            def do_POST(self):
                self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _handle(self, body: bytes):
                with proxy._lock:
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    proxy.requests.append({"method": self.command, "path": self.path,
                                           "headers": dict(self.headers), "body": body})
                    fault = proxy.faults.popleft() if proxy.faults else None
                try:
                    if fault and fault[0] == "sleep":
                        time.sleep(fault[1])
                        fault = None
                    if fault:
                        status, headers, payload = fault
                        self._reply(status, headers, payload)
                        return
                    upstream = proxy._client.request(
                        self.command, proxy.upstream + self.path, content=body or None,
                        headers={"Content-Type": "application/json"})
                    self._reply(upstream.status_code, {"Content-Type": upstream.headers.get(
                        "content-type", "application/json")}, upstream.content)
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1

            def _reply(self, status: int, headers: dict, payload: bytes):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def fail(self, status: int, body: dict | None = None, headers: dict | None = None, times: int = 1):
        payload = json.dumps(body or {"error": {"message": f"injected {status}"}}).encode()
        for _ in range(times):
            self.faults.append((status, {"Content-Type": "application/json", **(headers or {})}, payload))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._client.close()


@pytest.fixture
def proxy(server):
    proxy = FaultProxy(server.removesuffix("/v1"))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def engine(server):
    engine = OpenAIEngine(server, MODEL, timeout=60)
    engine.load()
    yield engine
    engine.close()


def fast_engine(url: str, model: str = MODEL, **kwargs) -> OpenAIEngine:
    """An engine with test-sized timeouts and backoff."""
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("max_retries", 2)
    kwargs.setdefault("backoff", 0.05)
    return OpenAIEngine(url, model, **kwargs)


# ----------------------------------------------------------------------------------------------- tests


def test_text_request_is_answered_with_usage(engine, server):
    [result] = engine.generate_batch([GenerationRequest("Be brief.", (user("Hello! How are you today?"),), 8)])
    assert result.error is None, result.error
    assert 0 < result.completion_tokens <= 8
    assert result.prompt_tokens > 10
    assert result.seconds > 0
    assert result.text == result.text.strip()
    health = engine.health()
    assert health.state is HostState.READY
    assert health.details["backend"] == "openai" and health.details["base_url"] == server
    assert health.details["model"] == MODEL
    json.dumps(health.as_json())


def test_photo_reaches_the_model(proxy):
    engine = fast_engine(proxy.url)
    text_only, photo = engine.generate_batch([
        GenerationRequest("", (user("What is in this picture?"),), 4),
        GenerationRequest("", (user("What is in this picture?", image_bytes(200, 150, fmt="JPEG")),), 4),
    ])
    assert text_only.error is None and photo.error is None, (text_only, photo)
    # 200x150 px at 16 px per token: ~12x9 image tokens on top of the text prompt
    assert photo.prompt_tokens > text_only.prompt_tokens + 50
    sent = [json.loads(r["body"]) for r in proxy.chat_requests()]
    photo_message = next(body for body in sent if isinstance(body["messages"][-1]["content"], list))
    parts = photo_message["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert photo_message["max_tokens"] == 4 and photo_message["model"] == MODEL
    engine.close()


def test_large_photo_is_downscaled_before_sending(proxy):
    budget = 64 * 64
    small = fast_engine(proxy.url, max_image_pixels=budget)
    default = fast_engine(proxy.url)
    photo = GenerationRequest("", (user("Describe.", image_bytes(1600, 1200, fmt="JPEG")),), 3)
    [downscaled] = small.generate_batch([photo])
    [full] = default.generate_batch([photo])
    assert downscaled.error is None and full.error is None
    # the tiny processor caps an image at 16x16 tokens; a 64x64-pixel budget is ~4x4 tokens
    assert downscaled.prompt_tokens < full.prompt_tokens - 100
    first = json.loads(proxy.chat_requests()[0]["body"])
    url = first["messages"][-1]["content"][0]["image_url"]["url"]
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.width * sent.height <= budget
    assert abs(sent.width / sent.height - 4 / 3) < 0.1
    small.close()
    default.close()


def test_batch_of_eight_concurrent_requests_answered_in_order(engine, proxy):
    requests = [
        GenerationRequest("", (user("Tell me about Singapore " + "please " * i),), 6) for i in range(8)
    ]
    concurrent = fast_engine(proxy.url, concurrency=8)
    started = time.perf_counter()
    results = concurrent.generate_batch(requests)
    assert time.perf_counter() - started < 30
    assert len(results) == 8
    assert all(r.error is None for r in results), results
    prompt_tokens = [r.prompt_tokens for r in results]
    assert prompt_tokens == sorted(prompt_tokens) and len(set(prompt_tokens)) == 8, prompt_tokens
    assert proxy.max_in_flight >= 2, "the requests were sent one after another"
    # greedy decoding: the same answers as asked one at a time
    alone = [engine.generate_batch([request])[0] for request in requests]
    assert [(r.text, r.prompt_tokens, r.completion_tokens) for r in alone] == [
        (r.text, r.prompt_tokens, r.completion_tokens) for r in results
    ]
    concurrent.close()


def test_generate_and_submit_work_from_many_threads(engine):
    requests = [GenerationRequest("", (user(f"Question {i}"),), 3) for i in range(4)]
    futures = [engine.submit(request) for request in requests]
    assert all(f.result(30).error is None for f in futures)
    assert engine.generate(requests[0], timeout=30).completion_tokens > 0


@pytest.mark.integration
def test_server_down_gives_a_clear_error_quickly():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    engine = fast_engine(url, max_retries=2, backoff=0.05, timeout=2)
    started = time.perf_counter()
    results = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)] * 2)
    elapsed = time.perf_counter() - started
    assert elapsed < 3
    for result in results:
        assert result.text == "" and result.error
        assert f"OpenAI-compatible server at {url} unreachable" in result.error
        assert "after 3 attempt(s)" in result.error
    with pytest.raises(EngineError, match="unreachable"):
        engine.load()
    assert engine.health().state is HostState.UNAVAILABLE  # a server that may come back
    engine.close()


def test_5xx_is_retried_until_success(proxy):
    proxy.fail(500)
    proxy.fail(503, headers={"Retry-After": "0"})
    engine = fast_engine(proxy.url, max_retries=3)
    [result] = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)])
    assert result.error is None, result.error
    assert result.completion_tokens > 0
    assert len(proxy.chat_requests()) == 3
    engine.close()


def test_5xx_retries_run_out(proxy):
    proxy.fail(500, body={"error": {"message": "engine exploded"}}, times=5)
    engine = fast_engine(proxy.url, max_retries=2)
    [result] = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)])
    assert result.error.startswith("EngineError: ")
    assert "HTTP 500 (after 3 attempts)" in result.error and "engine exploded" in result.error
    assert len(proxy.chat_requests()) == 3
    engine.close()


def test_429_honours_retry_after(proxy):
    proxy.fail(429, headers={"Retry-After": "1"})
    engine = fast_engine(proxy.url, backoff=0.01)
    started = time.perf_counter()
    [result] = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)])
    assert result.error is None, result.error
    assert time.perf_counter() - started >= 0.95
    assert len(proxy.chat_requests()) == 2
    engine.close()


def test_4xx_is_not_retried(proxy):
    # the real server refuses a model it doesn't serve with a 400
    engine = fast_engine(proxy.url, model="sealion-test/not-served", max_retries=3)
    [result] = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)])
    assert result.error and "HTTP 400" in result.error and "not-served" in result.error
    assert len(proxy.chat_requests()) == 1
    engine.close()


def test_slow_server_times_out_without_retry(proxy):
    proxy.faults.append(("sleep", 1.5))
    engine = fast_engine(proxy.url, timeout=0.5, max_retries=3)
    started = time.perf_counter()
    [result] = engine.generate_batch([GenerationRequest("", (user("hello"),), 4)])
    assert time.perf_counter() - started < 1.4
    assert result.error and "timed out after 0.5s" in result.error
    assert len(proxy.chat_requests()) == 1
    engine.close()


def test_api_key_is_sent_as_bearer_token(proxy):
    engine = fast_engine(proxy.url, api_key="sk-test-123")
    engine.load()
    assert proxy.requests[0]["path"] == "/v1/models"
    assert proxy.requests[0]["headers"].get("Authorization") == "Bearer sk-test-123"
    health = engine.health()
    assert health.details["api_key"] is True and "sk-test" not in json.dumps(health.as_json())
    engine.close()


def test_load_fails_clearly_on_a_wrong_model_name(server):
    engine = fast_engine(server, model="aisingapore/Qwen-SEA-LION-v4-8B-VL")
    with pytest.raises(EngineError) as info:
        engine.load()
    message = str(info.value)
    assert "'aisingapore/Qwen-SEA-LION-v4-8B-VL' is not served" in message
    assert server in message and MODEL in message  # says what the server does serve
    good = fast_engine(server)
    good.load()
    good.load()  # idempotent
    assert good.loaded and MODEL in good.served_models


def test_bad_requests_fail_alone(engine):
    results = engine.generate_batch([
        GenerationRequest("", (user("look", b"definitely not an image"),), 4),
        GenerationRequest("", (user("Hello!"),), 4),
        GenerationRequest("", (user("hi"), ChatTurn("assistant", "hello")), 4),
        GenerationRequest("", (user("hi"),), 0),
    ])
    assert len(results) == 4
    assert results[0].error and results[0].text == ""
    assert results[1].error is None and results[1].completion_tokens > 0
    assert results[2].error and "user turn" in results[2].error
    assert results[3].error and "max_new_tokens" in results[3].error
    assert engine.generate_batch([]) == []


def test_history_is_normalised_and_sent_in_order(proxy):
    engine = fast_engine(proxy.url)
    [result] = engine.generate_batch([GenerationRequest(
        "Be brief.",
        (ChatTurn("assistant", "Hi, I am SEA-LION!"), user("first"), user("second"),
         ChatTurn("assistant", "ok"), user("third", image_bytes(32, 32))),
        4,
    )])
    assert result.error is None, result.error
    messages = json.loads(proxy.chat_requests()[0]["body"])["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"] == "first\n\nsecond"
    assert messages[3]["content"][-1] == {"type": "text", "text": "third"}
    engine.close()


def test_base_url_without_path_gets_v1():
    assert OpenAIEngine("http://localhost:8000", "m").base_url == "http://localhost:8000/v1"
    assert OpenAIEngine("https://api.sea-lion.ai/v1/", "m").base_url == "https://api.sea-lion.ai/v1"
    with pytest.raises(ValueError):
        OpenAIEngine("localhost:8000", "m")


BLOCK_TORCH = """
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "torchvision"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocker())
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block torch")

from workers.models.chat.base import GenerationRequest, ChatTurn
from workers.models.chat.openai import OpenAIEngine

import io
from PIL import Image
buf = io.BytesIO()
Image.new("RGB", (300, 200), (1, 2, 3)).save(buf, "PNG")
engine = OpenAIEngine("http://127.0.0.1:9/v1", "m", max_retries=0, timeout=1, max_image_pixels=100)
assert engine._data_url(buf.getvalue()).startswith("data:image/jpeg;base64,")
[result] = engine.generate_batch([GenerationRequest("", (ChatTurn("user", "hi", (buf.getvalue(),)),), 4)])
assert "unreachable" in result.error, result.error
assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules), sorted(sys.modules)
print("ok")
"""


@pytest.mark.integration
def test_module_imports_without_torch():
    done = subprocess.run([sys.executable, "-c", BLOCK_TORCH], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip().endswith("ok")


# ------------------------------------------------------------------------------------- end to end


def test_telegram_text_and_photo_end_to_end_through_the_openai_backend(deploy, server, telegram):
    """The whole path — webhook, Redis, Celery worker, OpenAI backend, real server, Telegram."""
    from tests.conftest import new_chat_id
    from tests.helpers.updates import photo_update, text_update
    from tests.helpers.waiting import wait_replies

    service = deploy("qwen3_vl", MODEL_BACKEND="openai", OPENAI_BASE_URL=server,
                     OPENAI_MODEL=MODEL)
    chat = new_chat_id()
    service.post_update(text_update(chat, "Apa khabar? Boleh tolong saya?"))
    [answer] = wait_replies(telegram, chat, 1, timeout=90)
    assert answer.params["text"].strip()

    telegram.add_file("photo-large", image_bytes(1280, 960, fmt="JPEG"),
                      file_path="photos/openai.jpg")
    service.post_update(photo_update(chat, caption="Ini gambar apa?"))
    wait_replies(telegram, chat, 2, timeout=90)
    assert [c.params["file_id"] for c in telegram.calls_to("getFile")] == ["photo-large"]
    assert "loading the chat model (openai, http://127.0.0.1" in service.worker.log_path.read_text()
