"""The one place that reads the environment.

Every setting is an environment variable (or a line in `.env`) with the same name in capitals;
the names are the operator's contract, documented in the README. A platform is enabled when its
credentials are set.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    #: "json" (one object a line, for log collectors) or "text".
    log_format: Literal["json", "text"] = "json"

    # --- model -------------------------------------------------------------------------------
    #: "transformers": the GPU worker runs the model; "openai": it calls an OpenAI-compatible
    #: server (vLLM, SGLang, the hosted SEA-LION API) and needs no torch.
    model_backend: Literal["transformers", "openai"] = "transformers"
    model_id: str = "aisingapore/Qwen-SEA-LION-v4-4B-VL"
    processor_id: str | None = None
    max_new_tokens: int = Field(default=1024, ge=1, le=32768)
    #: The model's context: the prompt (history, images) is trimmed, by real token counts, to
    #: leave room for MAX_NEW_TOKENS.
    max_context_tokens: int = Field(default=16384, ge=256)
    #: Longest side budget for one image, in pixels (width * height) before the model sees it.
    max_image_pixels: int = Field(default=1024 * 1024, ge=64 * 64)
    #: Batching in the GPU worker: at most this many requests per generate() call ...
    engine_max_batch_size: int = Field(default=16, ge=1)
    #: ... gathered for at most this long after the first one arrives.
    engine_max_wait_ms: float = Field(default=5.0, ge=0)
    #: Force a device ("cpu", "cuda"); default: CUDA when available.
    engine_device: str | None = None
    #: The OpenAI-compatible server's root (ending in /v1), its key, and the model it serves
    #: (default: MODEL_ID).
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str | None = None
    openai_timeout_seconds: float = Field(default=120.0, gt=0)
    system_prompt: str = (
        "You are SEA-LION, a helpful, honest and friendly assistant built by AI Singapore for "
        "the people of Southeast Asia. Answer clearly and concisely."
    )

    # --- speech recognition (voice notes; workers/asr) ----------------------------------------
    #: "off": voice notes get the "I can't listen" notice; "transformers": Whisper runs in the
    #: inference worker beside the chat model; "openai": an OpenAI-compatible
    #: /v1/audio/transcriptions server (vLLM). Unset: "openai" when ASR_BASE_URL is set, else
    #: "transformers" when the chat model runs in process (MODEL_BACKEND=transformers), else off.
    asr_backend: Literal["off", "transformers", "openai"] | None = None
    asr_model_id: str = "openai/whisper-large-v3-turbo"
    asr_base_url: str | None = None
    asr_api_key: SecretStr | None = None
    #: The model the transcription server serves (default: ASR_MODEL_ID).
    asr_model: str | None = None
    asr_timeout_seconds: float = Field(default=120.0, gt=0)
    #: Longer voice notes get a polite note instead of a transcript.
    asr_max_seconds: float = Field(default=300.0, gt=0, le=3600)
    #: Keep the audio (in the conversation log, for the admin console) after transcription.
    asr_keep_audio: bool = False
    # --- end speech recognition ---------------------------------------------------------------

    # --- conversation ------------------------------------------------------------------------
    default_language: str = "en"
    #: Generate once more, with a firmer instruction, when an answer is confidently in another
    #: language than the user's.
    reply_language_check: bool = True
    #: Turns (a user message or a reply) kept per conversation.
    history_max_turns: int = Field(default=20, ge=0)
    #: Rough token budget for the history sent to the model (about 4 characters a token).
    history_max_tokens: int = Field(default=3000, ge=0)
    #: A conversation idle this long is forgotten (history and its images).
    history_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    #: Photos sharing an album id are gathered for this long before the turn starts.
    album_window_seconds: float = Field(default=1.5, ge=0)
    #: Upper bound for one turn (prepare, queue, generate, send): its owner stops renewing its
    #: lease after it, and the turn is resumed.
    turn_timeout_seconds: int = Field(default=600, ge=10)
    dedupe_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: Photos: the largest Telegram size within these budgets is downloaded.
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    #: Every media download (adapters/fetch.py): seconds to connect, and between two reads.
    fetch_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    fetch_read_timeout_seconds: float = Field(default=30.0, gt=0)
    typing_interval_seconds: float = Field(default=4.0, gt=0)
    #: Telegram sends each photo in several sizes: take the largest within this many pixels.
    telegram_photo_max_pixels: int = Field(default=1600 * 1600, ge=90 * 90)

    # --- infrastructure ----------------------------------------------------------------------
    redis_url: str | None = None
    #: Where `sealion-bot dev` keeps its embedded Redis data.
    data_dir: str = ".sealion"
    celery_visibility_timeout: int = Field(default=3600, ge=1)
    celery_task_time_limit: int = Field(default=900, ge=1)
    #: Restore unacked tasks of dead workers this often (seconds).
    celery_restore_interval: int = Field(default=10, ge=1)
    #: Recovery (README "Recovery"): a worker holding a turn renews its lease every
    #: LEASE_HEARTBEAT_SECONDS; a lease not renewed for LEASE_SECONDS is a dead worker's, and
    #: the reconciler in every worker, every RECONCILE_INTERVAL_SECONDS, restarts conversations
    #: with waiting messages and no live lease (untouched for RECONCILE_GRACE_SECONDS).
    lease_seconds: float = Field(default=30.0, ge=1)
    lease_heartbeat_seconds: float = Field(default=5.0, gt=0)
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    reconcile_grace_seconds: float = Field(default=10.0, ge=0)
    #: A conversation's waiting messages beyond this: the oldest is dropped (and counted).
    max_pending_messages: int = Field(default=50, ge=1)
    #: Every Redis client (state and broker): seconds to connect, and to wait for an answer.
    redis_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    redis_socket_timeout_seconds: float = Field(default=15.0, gt=1)
    #: Every platform API call (sending, typing): connect and total timeouts in seconds.
    platform_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    platform_timeout_seconds: float = Field(default=30.0, gt=0)
    #: A reply refused with a transient error is retried this many times (capped backoff).
    send_max_retries: int = Field(default=8, ge=0)
    #: TESTS ONLY (the fault-injection suite): "step" or "step:count" makes that turn step
    #: (fetch, prepare, generate, send, record) raise on its first `count` calls in each
    #: process. Refused in production.
    fault_inject: str | None = None

    # --- HTTP boundary (bot/limits.py, bot/logs.py) --------------------------------------------
    #: Largest request body of a webhook; larger ones get 413 before they are read.
    max_webhook_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Largest request body of every other route (the admin forms).
    max_form_body_bytes: int = Field(default=16 * 1024, ge=1024)
    #: Addresses whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (the reverse
    #: proxy's): comma-separated IPs or networks, or "*" for any; empty means 127.0.0.1.
    forwarded_allow_ips: str = "127.0.0.1"
    #: /metrics answers only with `Authorization: Bearer METRICS_TOKEN`; unset, only to a
    #: client on this machine that came through no proxy.
    metrics_token: SecretStr | None = None
    #: Keys the pseudonyms of conversations in logs; unset, derived from the platform secrets.
    log_id_key: SecretStr | None = None

    # --- Telegram ----------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    #: Private chats see the answer grow while it is generated (sendMessageDraft), refreshed
    #: every STREAM_INTERVAL_SECONDS; the final message is sent once, as always.
    telegram_streaming: bool = False
    stream_interval_seconds: float = Field(default=1.0, ge=0.3)
    #: Get updates by long polling (getUpdates) instead of a webhook: no public URL needed.
    #: `sealion-bot dev` polls when it is true; `sealion-bot poll` always does.
    telegram_polling: bool = False
    #: Seconds one getUpdates call waits for updates before Telegram answers with none.
    telegram_polling_timeout_seconds: int = Field(default=50, ge=1, le=600)

    # --- LINE --------------------------------------------------------------------------------
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
    line_data_api_base_url: str = "https://api-data.line.me"

    # --- WhatsApp Cloud API --------------------------------------------------------------------
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v23.0"
    #: Hosts WhatsApp media URLs may point at (Meta's CDN), comma-separated; ``*.`` matches
    #: subdomains. The Graph API host is always allowed; the bearer token goes nowhere else.
    whatsapp_media_hosts: str = "lookaside.fbsbx.com,*.fbsbx.com,*.fbcdn.net,*.whatsapp.net"

    # --- admin console and conversation log (bot/admin, storage/log/) --------------------------
    #: The durable conversation log: SQLite file, or PostgreSQL as postgresql+psycopg://...
    database_url: str = "sqlite:///.sealion/log.db"
    admin_username: str = "admin"
    #: Unset: the console at /admin is off (404).
    admin_password: SecretStr | None = None
    #: Signs the console's session cookie; unset, a random key generated once and kept in
    #: DATA_DIR (never derived from the password). A new password still signs everyone out.
    admin_session_secret: SecretStr | None = None
    #: Log entries older than this many days are deleted daily; 0 keeps them forever.
    retention_days: int = Field(default=0, ge=0)
    #: The /chat page (text and photos, no platform account). Off by default, on in
    #: `sealion-bot dev`; beyond this machine it asks for the admin console's sign-in.
    web_chat: bool = False
    # --- end admin console ----------------------------------------------------------------------

    # --- moderation and abuse controls (workers/guards, workers/moderation.py, storage/abuse.py)
    #: The guard that checks what people send and what the model answers: "off", "keywords"
    #: (GUARD_KEYWORDS_FILE), "transformers" (GUARD_MODEL_ID, loaded in the inference worker
    #: beside the chat model) or "openai" (an OpenAI-compatible server such as vLLM).
    guard_backend: Literal["off", "keywords", "transformers", "openai"] = "off"
    #: Check the person's text and photos before generation / the answer after it.
    guard_input: bool = True
    guard_output: bool = True
    #: When the guard cannot answer: "closed" sends the apology, "open" lets the turn through
    #: unchecked (counted in sealion_guard_failures_total).
    guard_fail: Literal["closed", "open"] = "closed"
    #: The guard's prompt and answer format; unset, guessed from the model name ("qwen3guard"
    #: when it names Qwen3Guard, else "sea-guard").
    guard_format: Literal["sea-guard", "qwen3guard"] | None = None
    #: Qwen3Guard's third label: refuse "Controversial" content too (its strict mode).
    guard_block_controversial: bool = False
    #: The refusal sent instead of a flagged message or answer; unset, the localized one.
    guard_blocked_reply: str | None = None
    #: GUARD_BACKEND=transformers: the guard checkpoint (a Qwen3-VL one like Qwen-SEA-Guard).
    guard_model_id: str = "aisingapore/Qwen-SEA-Guard-4B-2602"
    #: GUARD_BACKEND=openai: the server's /v1 root, its key, and the model it serves
    #: (default: GUARD_MODEL_ID).
    guard_base_url: str | None = None
    guard_api_key: SecretStr | None = None
    guard_model: str | None = None
    guard_timeout_seconds: float = Field(default=30.0, gt=0)
    #: GUARD_BACKEND=keywords: words or `re:` regular expressions, one a line, optionally under
    #: `[xx]` language headers.
    guard_keywords_file: str | None = None
    #: Per person: at most RATE_LIMIT_MESSAGES messages per RATE_LIMIT_WINDOW_SECONDS (a token
    #: bucket); 0 turns the limit off.
    rate_limit_messages: int = Field(default=20, ge=0)
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    #: When the oldest answer still being waited for is older than this, a new turn first gets a
    #: short "many people are writing" notice; 0 turns it off.
    busy_notice_seconds: float = Field(default=60.0, ge=0)
    # --- end moderation -------------------------------------------------------------------------

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.forwarded_allow_ips.strip():
            self.forwarded_allow_ips = "127.0.0.1"
        if self.celery_visibility_timeout <= self.celery_task_time_limit:
            raise ValueError(
                "CELERY_VISIBILITY_TIMEOUT must be above CELERY_TASK_TIME_LIMIT, or a slow task "
                "would be delivered twice"
            )
        if self.max_new_tokens >= self.max_context_tokens:
            raise ValueError("MAX_NEW_TOKENS must be below MAX_CONTEXT_TOKENS")
        if self.model_backend == "openai" and not self.openai_base_url:
            raise ValueError("MODEL_BACKEND=openai needs OPENAI_BASE_URL")
        if self.asr_backend == "openai" and not self.asr_base_url:
            raise ValueError("ASR_BACKEND=openai needs ASR_BASE_URL")
        if self.guard_backend == "openai" and not self.guard_base_url:
            raise ValueError("GUARD_BACKEND=openai needs GUARD_BASE_URL")
        if self.guard_backend == "keywords" and not self.guard_keywords_file:
            raise ValueError("GUARD_BACKEND=keywords needs GUARD_KEYWORDS_FILE")
        if self.guard_backend == "transformers" and self.effective_guard_format == "qwen3guard":
            raise ValueError("Qwen3Guard is a text-only model: serve it with vLLM and use "
                             "GUARD_BACKEND=openai")
        if self.fault_inject and self.environment == "production":
            raise ValueError("FAULT_INJECT is for tests only")
        if self.lease_heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError("LEASE_HEARTBEAT_SECONDS must be at most half of LEASE_SECONDS")
        if self.celery_visibility_timeout <= self.turn_timeout_seconds:
            raise ValueError("CELERY_VISIBILITY_TIMEOUT must be above TURN_TIMEOUT_SECONDS")
        if self.environment == "production" and self.telegram_enabled:
            secret = self.telegram_webhook_secret
            if secret is None or len(secret.get_secret_value()) < 16:
                raise ValueError("TELEGRAM_WEBHOOK_SECRET of 16+ characters is required in production")
        return self

    @property
    def effective_asr_backend(self) -> Literal["off", "transformers", "openai"]:
        """ASR_BACKEND, or its default: the server when one is named, else Whisper beside an
        in-process chat model, else off (a torch-less worker never starts needing torch)."""
        if self.asr_backend is not None:
            return self.asr_backend
        if self.asr_base_url:
            return "openai"
        return "transformers" if self.model_backend == "transformers" else "off"

    @property
    def asr_enabled(self) -> bool:
        return self.effective_asr_backend != "off"

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token and self.telegram_bot_token.get_secret_value())

    @property
    def line_enabled(self) -> bool:
        return _set(self.line_channel_secret) and _set(self.line_channel_access_token)

    @property
    def whatsapp_enabled(self) -> bool:
        return (_set(self.whatsapp_access_token) and _set(self.whatsapp_app_secret)
                and bool(self.whatsapp_phone_number_id))

    def check_listen_address(self, host: str) -> str | None:
        """A warning when the API may listen on `host` only on this machine; raises
        `ValueError` when it must not listen there at all (Telegram without a webhook secret
        of 16+ characters: anyone reaching the API could post messages for any chat)."""
        secret = (self.telegram_webhook_secret.get_secret_value()
                  if self.telegram_webhook_secret else "")
        if not self.telegram_enabled or len(secret) >= 16:
            return None
        if not is_loopback(host):
            raise ValueError(
                f"TELEGRAM_WEBHOOK_SECRET of 16+ characters is required when the API listens on "
                f"{host}: without it anyone who reaches the API can post messages for any chat. "
                "Set 16+ random characters (e.g. `openssl rand -hex 16`), then run `sealion-bot "
                "set-webhook telegram`; or listen on 127.0.0.1 only.")
        return ("TELEGRAM_WEBHOOK_SECRET is " + ("short" if secret else "not set") + ": the "
                "Telegram webhook accepts requests anyone on this machine can forge "
                f"(acceptable only while the API listens on {host})")

    @property
    def effective_guard_model(self) -> str:
        """The guard model's name: GUARD_MODEL for a server, else GUARD_MODEL_ID."""
        if self.guard_backend == "openai" and self.guard_model:
            return self.guard_model
        return self.guard_model_id

    @property
    def effective_guard_format(self) -> str:
        """GUARD_FORMAT, or the one the guard model's name suggests."""
        if self.guard_format:
            return self.guard_format
        name = self.effective_guard_model.lower().replace("-", "").replace("_", "")
        return "qwen3guard" if "qwen3guard" in name else "sea-guard"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) is this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _set(secret: SecretStr | None) -> bool:
    return bool(secret and secret.get_secret_value())


@lru_cache
def get_settings() -> Settings:
    return Settings()
