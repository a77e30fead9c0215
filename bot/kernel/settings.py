"""The one place that reads the environment.

Every setting is an environment variable (or a line in `.env`) with the same name in capitals;
the names are the operator's contract, documented in docs/configuration.md (and
deploy/.env.example). A platform is enabled when its credentials are set.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: BOT_PURPOSE=@file: the most a purpose file may hold.
PURPOSE_MAX_BYTES = 8 * 1024


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
    #: How often an inference worker asks a model server again (the chat, guard and speech
    #: servers): one that does not answer shows as unavailable in /readyz until it does.
    model_retry_seconds: float = Field(default=30.0, gt=0)
    system_prompt: str = (
        "You are SEA-LION, a helpful, honest and friendly assistant built by AI Singapore for "
        "the people of Southeast Asia. Answer clearly and concisely."
    )
    #: What this bot is for, in one paragraph (or `@path/to/file`, read once at start, at most
    #: 8 KiB): added to the system prompt on every platform, with the instruction to steer other
    #: requests back politely. WhatsApp needs one (Meta's AI Providers clause: README).
    bot_purpose: str = ""

    # --- speech recognition (voice notes; workers/models/speech) -----------------------------
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
    #: Photos and voice notes are decoded in a few processes of their own (workers/decoding.py),
    #: each allowed this much more memory than it starts with, and this long per decode: the
    #: second fence behind the decoders' own budgets (MAX_IMAGE_PIXELS, ASR_MAX_SECONDS).
    decode_memory_mb: int = Field(default=1024, ge=64)
    decode_timeout_seconds: float = Field(default=30.0, gt=0)
    decode_processes: int = Field(default=2, ge=1, le=64)
    #: Files sent in chat (PDF, DOCX, text; workers/turn/reading.py): scanned pages rendered
    #: for the model (each within MAX_IMAGE_PIXELS), and the prompt tokens the text may take
    #: (the rest is cut, and the person told).
    document_max_pages: int = Field(default=5, ge=1, le=50)
    document_max_tokens: int = Field(default=1500, ge=100)

    # --- the knowledge base (storage/knowledge.py, workers/turn/knowledge.py) ----------------
    #: auto: off while the knowledge base is empty, assist once it holds a document; assist:
    #: passages in the prompt, general knowledge allowed; strict: answers only from passages,
    #: a polite "not found" when none is relevant.
    knowledge_mode: Literal["auto", "off", "assist", "strict"] = "auto"
    #: Passages looked up per question, and the prompt tokens they may take.
    knowledge_top_k: int = Field(default=5, ge=1, le=20)
    knowledge_max_tokens: int = Field(default=1500, ge=100)
    #: A passage counts as relevant when it matches this share of the question's weight
    #: (0-1; measured by benchmarks/knowledge.py).
    knowledge_min_relevance: float = Field(default=0.2, ge=0, le=1)
    #: Embeddings for hybrid ranking (BM25 and cosine, fused by reciprocal rank): a local
    #: checkpoint folder or a Hugging Face id, loaded with transformers' AutoModel (the [gpu]
    #: extra); empty: full text alone. Texts are cut to the max length in tokens.
    knowledge_embedding_model: str = ""
    knowledge_embedding_max_length: int = Field(default=512, ge=8, le=8192)
    #: With embeddings on, a passage also counts as relevant when its cosine similarity to the
    #: question reaches this (it depends on the model: measure it on your documents).
    knowledge_min_similarity: float = Field(default=0.5, ge=-1, le=1)
    #: Documents added from the CLI or the console: bytes, PDF pages.
    knowledge_max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    knowledge_max_pages: int = Field(default=500, ge=1)

    # --- infrastructure ----------------------------------------------------------------------
    redis_url: str | None = None
    #: Redis Sentinel (docs/configuration.md "Redis HA"): comma-separated host:port of the
    #: sentinels. When set it replaces REDIS_URL for every client and the Celery broker: each
    #: finds the master through the sentinels, and finds the new one after a failover.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = Field(default="mymaster", pattern=r"^[A-Za-z0-9._-]+$")
    #: The data nodes' password and the sentinels' own (Sentinel only: REDIS_URL carries its own).
    redis_password: SecretStr | None = None
    redis_sentinel_password: SecretStr | None = None
    redis_db: int = Field(default=0, ge=0, le=15)
    #: An accepted message is answered 200 only once this many replicas hold it (WAIT, up to
    #: REDIS_WAIT_TIMEOUT_MS); else 503 with Retry-After, and the platform's retry is accepted.
    redis_min_replicas_ack: int = Field(default=0, ge=0, le=10)
    redis_wait_timeout_ms: int = Field(default=500, ge=1, le=10000)
    #: Where `sealion-bot dev` keeps its embedded Redis data.
    data_dir: str = ".sealion"
    #: The broker keeps no unacknowledged messages in Redis (workers/broker.py): nothing is
    #: redelivered after this; it stays the bound for how late a task may still come (a
    #: retry, a message put back at a worker's stop), which erasure tombstones outlive.
    celery_visibility_timeout: int = Field(default=3600, ge=1)
    celery_task_time_limit: int = Field(default=900, ge=1)
    #: Unused since the broker keeps no unacknowledged messages in Redis (workers/broker.py);
    #: accepted so existing environment files still load.
    celery_restore_interval: int = Field(default=10, ge=1)
    #: Metrics are recorded in each process's memory and flushed into Redis this often
    #: (seconds; storage/metrics.py); /metrics also flushes the API's own at every scrape.
    metrics_flush_seconds: float = Field(default=5.0, gt=0)
    #: Recovery (docs/recovery.md): a worker holding a turn renews its lease every
    #: LEASE_HEARTBEAT_SECONDS; a lease not renewed for LEASE_SECONDS is a dead worker's, and
    #: the reconciler in every worker, every RECONCILE_INTERVAL_SECONDS, restarts conversations
    #: with waiting messages and no live lease (untouched for RECONCILE_GRACE_SECONDS).
    lease_seconds: float = Field(default=30.0, ge=1)
    lease_heartbeat_seconds: float = Field(default=5.0, gt=0)
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    reconcile_grace_seconds: float = Field(default=10.0, ge=0)
    #: A worker told to stop (SIGTERM, SIGINT) lets the steps it is running finish for this
    #: long; then it hands their turns back (another worker resumes them at once) and exits.
    #: Every process stops within 30 s: `dev` kills its worker 5 s after this.
    stop_grace_seconds: float = Field(default=10.0, ge=0, le=20)
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

    # --- HTTP boundary (bot/web/limits.py, bot/kernel/logs.py) --------------------------------------------
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
    #: Messages the bot may send on WhatsApp per calendar month (UTC); 0 = no limit. At 90 %
    #: the console warns; at 100 % each person gets one short note and nothing more is sent.
    whatsapp_monthly_message_budget: int = Field(default=0, ge=0)

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
    #: At most this many /chat pages wait for replies at once (long polls); more get 503 and
    #: ask again a moment later.
    web_chat_max_waiting: int = Field(default=100, ge=1)
    # --- end admin console ----------------------------------------------------------------------

    # --- moderation and abuse controls (workers/models/guard, workers/moderation.py,
    # storage/abuse.py)
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
    # --- hand-off to a person (storage/handoff.py) ----------------------------------------------
    #: A held conversation goes back to the bot after this long without operator activity.
    handoff_ttl_seconds: int = Field(default=3600, ge=1)
    #: A Telegram chat of operators told (through the same bot) when a person asks for a human.
    handoff_notify_telegram_chat_id: str | None = None
    #: POSTed a small signed JSON when a person asks for a human (HMAC-SHA256 with the secret).
    handoff_notify_url: str | None = None
    handoff_notify_secret: SecretStr | None = None
    # --- end hand-off ---------------------------------------------------------------------------
    #: 👍/👎 buttons under answers (Telegram inline keyboard, LINE quick reply, WhatsApp reply
    #: buttons). Reactions are counted as ratings either way.
    feedback_buttons: bool = True

    @field_validator("bot_purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        """BOT_PURPOSE itself, or the file `@path` names (UTF-8, at most 8 KiB)."""
        value = value.strip()
        if not value.startswith("@"):
            return value
        path = value[1:].strip()
        try:
            with open(path, "rb") as handle:
                raw = handle.read(PURPOSE_MAX_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"BOT_PURPOSE file {path}: {exc.strerror}") from None
        if len(raw) > PURPOSE_MAX_BYTES:
            raise ValueError(f"BOT_PURPOSE file {path} is over {PURPOSE_MAX_BYTES} bytes")
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"BOT_PURPOSE file {path} is not UTF-8") from None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.handoff_notify_url and len(
                self.handoff_notify_secret.get_secret_value()
                if self.handoff_notify_secret else "") < 32:
            raise ValueError("HANDOFF_NOTIFY_URL needs HANDOFF_NOTIFY_SECRET (32+ characters)")
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
        parse_sentinels(self.redis_sentinels or "")  # a bad entry fails at start
        if self.redis_socket_timeout_seconds * 1000 <= self.redis_wait_timeout_ms:
            raise ValueError("REDIS_SOCKET_TIMEOUT_SECONDS must be above REDIS_WAIT_TIMEOUT_MS, or "
                             "the replicas' WAIT would time out as a dead connection")
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
        of 16+ characters: anyone reaching the API could post messages for any chat). While
        Telegram polls, its webhook is not served: nothing is required."""
        secret = (self.telegram_webhook_secret.get_secret_value()
                  if self.telegram_webhook_secret else "")
        if not self.telegram_enabled or self.telegram_polling or len(secret) >= 16:
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
    def served_model(self) -> str:
        """The model's name as the operator knows it: the server's model, or MODEL_ID."""
        if self.model_backend == "openai":
            return self.openai_model or self.model_id
        return self.model_id

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"

    @property
    def sentinel_nodes(self) -> tuple[tuple[str, int], ...]:
        """REDIS_SENTINELS as (host, port) pairs (port 26379 when left out; `[v6]:port`);
        empty without Sentinel."""
        return parse_sentinels(self.redis_sentinels or "")

    @property
    def redis_display(self) -> str:
        """Where Redis is, without a password (the startup summary)."""
        if not self.sentinel_nodes:
            return self.effective_redis_url
        nodes = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinel_nodes)
        return f"sentinel://{nodes} master={self.redis_sentinel_master} db={self.redis_db}"


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (a bare host gets 26379; `[::1]:26379` for IPv6). Raises
    `ValueError` naming REDIS_SENTINELS on an empty entry or a bad port."""
    nodes: list[tuple[str, int]] = []
    if not value.strip():
        return ()
    for raw in value.split(","):
        entry = raw.strip()
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        elif entry.count(":") == 1:
            host, port_text = entry.split(":")
        else:
            host, port_text = entry, ""
        try:
            port = int(port_text) if port_text else 26379
        except ValueError:
            port = 0
        if not host or not 0 < port < 65536:
            raise ValueError(f"REDIS_SENTINELS: {entry!r} is not host:port")
        nodes.append((host, port))
    return tuple(nodes)


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
