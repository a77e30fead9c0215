"""The composition root: the one place that builds things from `Settings`.

Every process makes one `Services` from its settings and takes what it needs from it: the web
app (`bot.web.app.create_app`), a worker (`sealion-bot worker`), every other CLI command, the
benchmarks and the tests. Everything is built on first use (a cached property, or a lock for the
models), never at import time, so importing a module never connects to anything; and every
Redis client gets the configured timeouts (REDIS_SOCKET_TIMEOUT_SECONDS,
REDIS_CONNECT_TIMEOUT_SECONDS).

    redis, redis_async          the process's Redis client (a worker's threads share it), and
                                the running event loop's asyncio client
    inbox, inbox_async, ...     the stores of `storage/`, over those clients
    metrics                     the process's counters, flushed into Redis (close() flushes)
    celery                      the Celery app with the turn's tasks (`workers.tasks`)
    adapter(platform)           a platform adapter for the calling thread's event loop
    webhook_adapters()          the enabled platforms the web app serves
    models                      the model hosts (`workers.models.host.ModelHosts`: chat, and
                                speech and guard when on), built cheaply and loaded on first
                                use or by a worker's warm-up: the web process never loads one
    moderator                   the guard host around the chat model, with the guard settings
    turns, leases, intake       the turn service and the accept path
    worker_app(name)            the Celery app of a worker process, its start and stop wired

Nothing else builds a client, a store, an adapter, a model or the Celery app. Settings are
passed, never put back into the environment: a child process (dev's worker) gets its settings in
its own environment, built explicitly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePath
from typing import Any, TypeVar

from celery import Celery
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel

from adapters.base import BaseAdapter, adapter_class
from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.settings import Settings
from storage.abuse import AbuseScreen, Backlog, BlockList, RateLimiter
from storage.connection import (
    API_RETRIES,
    RedisTarget,
    async_client,
    async_sentinel,
    master_address,
    sync_client,
)
from storage.conversations import ConversationStore, WorkerRegistry
from storage.handoff import HandoffStore
from storage.history import RedisHistory
from storage.identities import AsyncIdentityMap, IdentityMap
from storage.inbox import AsyncInbox, Inbox
from storage.keys import KeyBuilder
from storage.knowledge import DocumentRow, KnowledgeBase, NewPassage
from storage.log import ConversationLog
from storage.mailbox import LocalMailbox, OutboxReader
from storage.metrics import RedisMetrics
from storage.model_status import ModelStatusBoard
from storage.poll_offsets import PollOffsets
from storage.voice import VoiceNotes
from workers.celery_app import create_celery, enqueue_conversation
from workers.decoding import DecodeFenceError, DecodeSandbox
from workers.documents import DocumentBudget, DocumentError, passages, read_document
from workers.documents import Problem as DocumentProblem
from workers.faults import FaultInjector
from workers.intake import Intake
from workers.leases import LeaseKeeper
from workers.models.chat.base import BaseEngine
from workers.models.embedding import TransformersEmbedder
from workers.models.guard.base import BaseGuard
from workers.models.host import ModelHosts
from workers.models.speech.base import BaseRecogniser, RecogniserUnavailable
from workers.moderation import Moderator
from workers.turn import TurnService, assemble

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _LoopClients:
    redis: AsyncRedis
    inbox: AsyncInbox
    sentinel: AsyncSentinel | None
    identities: AsyncIdentityMap


class Services:
    """Everything one process uses, built from `settings` on first use (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyBuilder()
        self._local = threading.local()
        #: The asyncio client and inbox of each event loop (forgotten once their loop closed).
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
        self._loop_lock = threading.Lock()
        #: This process is a worker that consumes the inference queue: a turn's model steps
        #: run where the turn started, without a hop (set by `workers.lifecycle` at start).
        self.hosts_models = False
        #: This process answers HTTP (`api`, `dev`'s own process): it loads no model, the
        #: knowledge base's embedding model included (a document uploaded in the console is
        #: embedded by the next worker that prepares or searches the knowledge base).
        self.serves_http = False

    # --- Redis -----------------------------------------------------------------------------------
    @cached_property
    def redis_target(self) -> RedisTarget:
        """REDIS_URL, or the sentinels (REDIS_SENTINELS) every client finds the master through."""
        return RedisTarget.from_settings(self.settings)

    @cached_property
    def redis(self) -> Redis:
        """The process's Redis client (a connection pool; threads share it). With Sentinel it
        follows the master through a failover, retrying for as long as one takes."""
        return sync_client(self.redis_target)

    @property
    def redis_async(self) -> AsyncRedis:
        """The asyncio client of the running event loop: one per loop, since a client's
        connections belong to the loop that opened them (a test client may run each request
        on a loop of its own). Only inside a coroutine."""
        return self._on_this_loop().redis

    def _on_this_loop(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        with self._loop_lock:
            made = self._loops.get(loop)
            if made is None:
                for closed in [old for old in self._loops if old.is_closed()]:
                    del self._loops[closed]  # their connections died with their loop
                s = self.settings
                target = self.redis_target
                # The API answers 503 during a failover (the platform retries) rather than
                # holding a webhook through it: few retries.
                sentinel = async_sentinel(target) if target.uses_sentinel else None
                client = async_client(target, sentinel=sentinel, retries=API_RETRIES)
                made = self._loops[loop] = _LoopClients(client, AsyncInbox(
                    client, dedupe_ttl=s.dedupe_ttl_seconds,
                    pending_ttl=s.turn_timeout_seconds * 4,
                    max_pending=s.max_pending_messages, keys=self.keys,
                    replicas=s.redis_min_replicas_ack, wait_ms=s.redis_wait_timeout_ms),
                    sentinel, AsyncIdentityMap(client, self.keys))
            return made

    # --- stores ----------------------------------------------------------------------------------
    @cached_property
    def inbox(self) -> Inbox:
        """The accept side of every channel, capped at MAX_PENDING_MESSAGES a conversation."""
        s = self.settings
        return Inbox(self.redis, dedupe_ttl=s.dedupe_ttl_seconds,
                     pending_ttl=s.turn_timeout_seconds * 4, max_pending=s.max_pending_messages,
                     keys=self.keys, replicas=s.redis_min_replicas_ack,
                     wait_ms=s.redis_wait_timeout_ms)

    @property
    def inbox_async(self) -> AsyncInbox:
        """The same accept on `redis_async` (the running loop's): the web app's webhooks and
        web chat."""
        return self._on_this_loop().inbox

    @cached_property
    def identities(self) -> IdentityMap:
        """Every id of a person -> one canonical id (WhatsApp phone and BSUIDs)."""
        return IdentityMap(self.redis, self.keys)

    @property
    def identities_async(self) -> AsyncIdentityMap:
        """The same map on the running loop's client: the webhooks' accept path."""
        return self._on_this_loop().identities

    @cached_property
    def conversations(self) -> ConversationStore:
        s = self.settings
        return ConversationStore(self.redis, lease_seconds=s.lease_seconds,
                                 list_ttl=max(s.turn_timeout_seconds * 4, 3600), keys=self.keys,
                                 history_ttl=s.history_ttl_seconds,
                                 max_history=s.history_max_turns)

    @cached_property
    def history(self) -> RedisHistory:
        return RedisHistory(self.redis, ttl=self.settings.history_ttl_seconds,
                            max_turns=self.settings.history_max_turns, keys=self.keys)

    @cached_property
    def voice(self) -> VoiceNotes:
        """A turn's voice notes, kept in Redis between hearing and answering."""
        return VoiceNotes(self.redis, ttl=max(self.settings.turn_timeout_seconds * 2, 600))

    @cached_property
    def metrics(self) -> RedisMetrics:
        """Recorded in memory, flushed into Redis every METRICS_FLUSH_SECONDS by a thread of
        its own (and by `close()`)."""
        return RedisMetrics(self.redis, keys=self.keys,
                            flush_seconds=self.settings.metrics_flush_seconds)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        s = self.settings
        return RateLimiter(self.redis, messages=s.rate_limit_messages,
                           window_seconds=s.rate_limit_window_seconds, keys=self.keys)

    @cached_property
    def block_list(self) -> BlockList:
        return BlockList(self.redis, keys=self.keys)

    @cached_property
    def backlog(self) -> Backlog:
        """Turns waiting for their answer (the busy notice)."""
        return Backlog(self.redis, stale_after=self.settings.turn_timeout_seconds)

    @cached_property
    def worker_registry(self) -> WorkerRegistry:
        return WorkerRegistry(self.redis, keys=self.keys)

    @cached_property
    def model_status(self) -> ModelStatusBoard:
        return ModelStatusBoard(self.redis)

    def poll_offsets(self, platform: Platform, bot_id: str) -> PollOffsets:
        return PollOffsets(self.redis, platform, bot_id)

    @cached_property
    def mailbox(self) -> LocalMailbox:
        """Uploads and replies of the local channels (the terminal and the web chat)."""
        s = self.settings
        return LocalMailbox(self.redis, upload_ttl=max(s.turn_timeout_seconds * 4, 3600),
                            outbox_ttl=s.history_ttl_seconds, keys=self.keys)

    def outbox_reader(self, wait_seconds: float) -> OutboxReader:
        """Asynchronous readers of the local outboxes, for waits up to `wait_seconds`."""
        timeout = wait_seconds + self.settings.redis_socket_timeout_seconds

        def connect() -> AsyncRedis:
            target = self.redis_target
            sentinel = self._on_this_loop().sentinel
            return async_client(target, sentinel=sentinel, retries=API_RETRIES,
                                socket_timeout=timeout, socket_connect_timeout=2,
                                single_connection_client=True)

        return OutboxReader(connect, keys=self.keys)

    @cached_property
    def conversation_log(self) -> ConversationLog:
        """The durable log admins review (DATABASE_URL)."""
        return ConversationLog(self.settings.database_url)

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        """The operator's knowledge base, in the log's database (its engine shared), with the
        embedding model when KNOWLEDGE_EMBEDDING_MODEL names one (loaded on first use)."""
        return KnowledgeBase(self.conversation_log.engine, embedder=self.embedder)

    @cached_property
    def embedder(self) -> TransformersEmbedder | None:
        """The knowledge base's embedding model (`workers.models.embedding`), built cheaply:
        only a process that indexes or searches loads it."""
        s = self.settings
        if self.serves_http or not s.knowledge_embedding_model.strip():
            return None
        return TransformersEmbedder(s.knowledge_embedding_model.strip(),
                                    max_length=s.knowledge_embedding_max_length)

    def add_document(self, data: bytes, filename: str | None, *, title: str | None = None,
                     added_by: str = "cli") -> DocumentRow:
        """`add_document` with this process's knowledge base and decode processes."""
        return add_document(self.knowledge, self.sandbox, self.settings, data, filename,
                            title=title, added_by=added_by)

    def purge_log(self) -> None:
        """Apply RETENTION_DAYS to the conversation log (Celery beat runs it daily)."""
        from storage.log import purge_expired

        purge_expired(self.settings)

    # --- the broker ------------------------------------------------------------------------------
    @cached_property
    def celery(self) -> Celery:
        """The Celery app (broker: REDIS_URL); the turn's tasks are registered on it."""
        import workers.tasks  # noqa: F401  (shared tasks bind to this app)

        app = create_celery(self.settings)
        # What the tasks run with (`workers.tasks.TaskServices`).
        app.sealion = self  # type: ignore[attr-defined]
        app.set_current()
        app.set_default()
        return app

    def enqueue(self, key: ConversationKey) -> None:
        """Ask an I/O worker to start the conversation's next turn (one LPUSH)."""
        enqueue_conversation(self.redis, self.celery, key)

    # --- adapters --------------------------------------------------------------------------------
    def adapter(self, platform: Platform) -> BaseAdapter:
        """The platform's adapter for the calling thread: an adapter's HTTP clients are bound
        to the event loop they were made in, and each worker thread runs its own loop."""
        adapters = getattr(self._local, "adapters", None)
        if adapters is None:
            adapters = self._local.adapters = {}
        if platform not in adapters:
            adapters[platform] = self.new_adapter(platform)
        return adapters[platform]

    def new_adapter(self, platform: Platform) -> BaseAdapter:
        """A new adapter for `platform` (the caller closes it)."""
        cls = adapter_class(platform)
        if platform.local:
            return cls(self.settings, self.mailbox)  # type: ignore[call-arg]
        return cls(self.settings)

    def webhook_adapters(self) -> dict[Platform, BaseAdapter]:
        """The platforms the operator configured that have a webhook (local chats have none)."""
        found: dict[Platform, BaseAdapter] = {}
        for platform in Platform:
            try:
                cls = adapter_class(platform)
            except KeyError:
                continue
            if cls.enabled(self.settings) and not platform.local:
                found[platform] = cls(self.settings)
        return found

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the calling thread's own event loop (kept for the thread's life)."""
        runner = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
        return runner.run(coro)

    # --- the models ------------------------------------------------------------------------------
    @cached_property
    def sandbox(self) -> DecodeSandbox:
        """The decode processes for photos and voice notes (started on first use)."""
        return DecodeSandbox.from_settings(self.settings)

    @cached_property
    def models(self) -> ModelHosts:
        """The model hosts the settings name (MODEL_BACKEND, ASR_BACKEND, GUARD_BACKEND), built
        cheaply: a host loads on first use, or when a worker warms it up (`workers.lifecycle`)."""
        return ModelHosts(chat=_chat_host(self.settings), speech=_speech_host(self.settings),
                          guard=_guard_host(self.settings))

    @cached_property
    def moderator(self) -> Moderator:
        """The guard host around the model (GUARD_BACKEND, GUARD_INPUT, GUARD_FAIL, ...)."""
        return Moderator.from_settings(self.settings, self.models.guard, self.metrics)

    def speech(self) -> BaseRecogniser:
        """The speech host; `RecogniserUnavailable` when ASR_BACKEND is off."""
        if self.models.speech is None:
            raise RecogniserUnavailable("speech recognition is off (ASR_BACKEND=off)")
        return self.models.speech

    # --- the turn --------------------------------------------------------------------------------
    @cached_property
    def leases(self) -> LeaseKeeper:
        """The turn leases this process renews (`workers.lifecycle` beats them)."""
        return LeaseKeeper(self.conversations, max_hold_seconds=self.settings.turn_timeout_seconds,
                           master=lambda: master_address(self.redis))

    @cached_property
    def abuse(self) -> AbuseScreen:
        """The block list and the per-person rate limit, one script a turn."""
        s = self.settings
        return AbuseScreen(self.redis, messages=s.rate_limit_messages,
                           window_seconds=s.rate_limit_window_seconds, keys=self.keys)

    @cached_property
    def handoffs(self) -> HandoffStore:
        """Hand-off holds: conversations a person of the team answers instead of the bot."""
        return HandoffStore(self.redis, ttl=self.settings.handoff_ttl_seconds, keys=self.keys)

    @cached_property
    def turns(self) -> TurnService:
        """The turn service: its stages wired to this process's services."""
        return assemble(self.settings, store=self.conversations, history=self.history,
                        conversation_log=self.conversation_log, metrics=self.metrics,
                        adapters=self.adapter, engine=lambda: self.models.chat, run=self.run,
                        leases=self.leases, faults=FaultInjector(self.settings.fault_inject),
                        recogniser=self.speech, voice=self.voice,
                        moderator=self.moderator, abuse=self.abuse, backlog=self.backlog,
                        sandbox=self.sandbox, knowledge=self.knowledge,
                        handoffs=self.handoffs)

    @cached_property
    def intake(self) -> Intake:
        """The accept path (dedupe, pending list, wake-up) for channels that are not the web
        app's webhooks: Telegram polling and the local chats."""
        return Intake(self.inbox, self.celery, self.metrics,
                      album_window=self.settings.album_window_seconds)

    # --- a worker process ------------------------------------------------------------------------
    def worker_app(self, name: str | None = None) -> Celery:
        """The Celery app of a worker process, with its start (heartbeat, reconciler, models'
        warm-up) and stop (leases handed back, decode processes closed) wired."""
        from workers.lifecycle import WorkerLife

        app = self.celery
        life = WorkerLife(self, name or f"{socket.gethostname()}:{os.getpid()}")
        life.install()
        app.sealion_life = life  # type: ignore[attr-defined]
        return app

    # --- the end ---------------------------------------------------------------------------------
    async def close_async(self) -> None:
        """Close the running loop's asyncio client; the next use makes a new one."""
        with self._loop_lock:
            made = self._loops.pop(asyncio.get_running_loop(), None)
        if made is not None:
            try:
                await made.redis.aclose()
                if made.sentinel is not None:
                    for one in made.sentinel.sentinels:
                        await one.aclose()
            except Exception:
                log.debug("asyncio Redis client not closed cleanly", exc_info=True)

    def close(self) -> None:
        """Release what was built (clients, pools, processes); safe to call twice. The metrics
        are flushed first, while the Redis client is still open."""
        for name in ("metrics", "sandbox"):
            made = self.__dict__.pop(name, None)
            if made is not None:
                try:
                    made.close()
                except Exception:
                    log.warning("%s not closed cleanly", name, exc_info=True)
        for name in ("conversation_log", "mailbox"):
            made = self.__dict__.pop(name, None)
            if made is not None:
                try:
                    made.close()
                except Exception:
                    log.debug("%s not closed cleanly", name, exc_info=True)
        client = self.__dict__.pop("redis", None)
        if client is not None:
            client.close()


def add_document(knowledge: KnowledgeBase, sandbox: DecodeSandbox, settings: Settings,
                 data: bytes, filename: str | None, *, title: str | None = None,
                 added_by: str = "cli") -> DocumentRow:
    """Read a document in a decode process, under the knowledge base's budgets, and add its
    passages. Raises `DocumentError` (unreadable, encrypted, too large) and `AlreadyThere`."""
    budget = DocumentBudget(max_bytes=settings.knowledge_max_file_bytes,
                            max_pages=settings.knowledge_max_pages)
    if len(data) > budget.max_bytes:  # before a byte is sent to the decode process
        raise DocumentError(DocumentProblem.TOO_LARGE, f"over {budget.max_bytes} bytes")
    try:
        document = sandbox.run(read_document, data, filename, budget)
    except DecodeFenceError as exc:
        raise DocumentError(DocumentProblem.UNREADABLE, str(exc)) from exc
    name = PurePath(filename).name if filename else None
    return knowledge.add(
        title=title or document.title or (PurePath(name).stem if name else "document"),
        filename=name, mime_type=document.kind.value, sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data), pages=document.pages, added_by=added_by,
        passages=[NewPassage(p.text, p.page, p.section) for p in passages(document)])


# --- the model hosts ------------------------------------------------------------------------------
def _chat_host(s: Settings) -> BaseEngine:
    """MODEL_BACKEND: a server (which batches by itself: requests go straight to it, many at
    a time) or the model in process, behind the one batcher."""
    if s.model_backend == "openai":
        from workers.models.chat.openai import OpenAIEngine

        assert s.openai_base_url
        return OpenAIEngine(
            s.openai_base_url, s.served_model,
            s.openai_api_key.get_secret_value() if s.openai_api_key else None,
            timeout=s.openai_timeout_seconds, max_image_pixels=s.max_image_pixels,
            concurrency=max(s.engine_max_batch_size, 16))
    from workers.models.chat.transformers import TransformersEngine

    return TransformersEngine(s.model_id, s.processor_id, device=s.engine_device,
                              max_image_pixels=s.max_image_pixels,
                              max_context_tokens=s.max_context_tokens,
                              max_batch=s.engine_max_batch_size,
                              max_wait=s.engine_max_wait_ms / 1000)


def _speech_host(s: Settings) -> BaseRecogniser | None:
    """ASR_BACKEND (`Settings.effective_asr_backend`): Whisper in process beside the chat model,
    a transcription server, or none."""
    backend = s.effective_asr_backend
    if backend == "openai":
        from workers.models.speech.openai import OpenAIRecogniser

        assert s.asr_base_url
        key = s.asr_api_key.get_secret_value() if s.asr_api_key else None
        return OpenAIRecogniser(s.asr_base_url, s.asr_model or s.asr_model_id, key,
                                timeout=s.asr_timeout_seconds)
    if backend == "transformers":
        from workers.models.speech.transformers import TransformersRecogniser

        return TransformersRecogniser(s.asr_model_id, device=s.engine_device,
                                      batch_size=s.engine_max_batch_size,
                                      max_batch=s.engine_max_batch_size,
                                      max_wait=s.engine_max_wait_ms / 1000)
    return None


def _guard_host(s: Settings) -> BaseGuard | None:
    """GUARD_BACKEND: a keywords file, a guard model in process, a guard server, or none."""
    if s.guard_backend == "off":
        return None
    from workers.models.guard.formats import format_named

    guard_format = format_named(s.effective_guard_format)
    if s.guard_backend == "keywords":
        from workers.models.guard.keywords import KeywordsGuard

        assert s.guard_keywords_file
        return KeywordsGuard(s.guard_keywords_file)
    if s.guard_backend == "openai":
        from workers.models.guard.openai import OpenAIGuard

        assert s.guard_base_url
        return OpenAIGuard(s.guard_base_url, s.effective_guard_model, guard_format,
                           s.guard_api_key.get_secret_value() if s.guard_api_key else None,
                           timeout=s.guard_timeout_seconds, max_image_pixels=s.max_image_pixels)
    from workers.models.guard.transformers import TransformersGuard

    return TransformersGuard(s.guard_model_id, guard_format, device=s.engine_device,
                             max_image_pixels=s.max_image_pixels,
                             max_batch=s.engine_max_batch_size,
                             max_wait=s.engine_max_wait_ms / 1000,
                             timeout=s.guard_timeout_seconds)
