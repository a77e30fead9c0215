"""What a worker process holds: one Redis client, the stores, the turn service built from them,
the lease keeper, and per-thread adapters and loops.

Celery's threads pool runs tasks on long-lived threads. Each thread gets its own asyncio event
loop and its own adapter instances, because a python-telegram-bot `Bot` (and any async HTTP
client) is bound to the loop it was created in. The engine is one per process, loaded on first
use, after any fork.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from functools import cached_property
from typing import Any, TypeVar

import redis

from adapters.base import BaseAdapter, adapter_class
from bot.messages import Platform
from bot.settings import Settings, get_settings
from storage.abuse import Backlog, BlockList, RateLimiter
from storage.conversations import ConversationStore, WorkerRegistry
from storage.history import RedisHistory
from storage.log import ConversationLog
from storage.metrics import RedisMetrics
from storage.voice import VoiceNotes
from workers.asr.base import BaseRecogniser
from workers.faults import FaultInjector
from workers.leases import LeaseKeeper
from workers.moderation import AbuseScreen, Moderator
from workers.pipeline import TurnService

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._engine_lock = threading.Lock()
        self._engine: Any = None
        self._recogniser: BaseRecogniser | None = None
        self._recogniser_lock = threading.Lock()
        #: Why the model could not be loaded (the paragraph of `bot.startup`), once it failed:
        #: requests then fail at once instead of trying the load again each time.
        self.engine_failure: str | None = None

    @cached_property
    def redis(self) -> redis.Redis:
        s = self.settings
        return redis.Redis.from_url(
            s.effective_redis_url, socket_timeout=s.redis_socket_timeout_seconds,
            socket_connect_timeout=s.redis_connect_timeout_seconds, health_check_interval=30)

    @cached_property
    def store(self) -> ConversationStore:
        return ConversationStore(self.redis, lease_seconds=self.settings.lease_seconds,
                                 list_ttl=max(self.settings.turn_timeout_seconds * 4, 3600))

    @cached_property
    def leases(self) -> LeaseKeeper:
        """The turn leases this process renews (workers.lifecycle beats them)."""
        return LeaseKeeper(self.store, max_hold_seconds=self.settings.turn_timeout_seconds)

    @cached_property
    def turns(self) -> TurnService:
        """The turn service, its services injected."""
        return TurnService(self.settings, store=self.store, history=self.history,
                           conversation_log=self.conversation_log, metrics=self.metrics,
                           adapters=self.adapter, engine=self.engine, run=self.run,
                           leases=self.leases, faults=FaultInjector(self.settings.fault_inject),
                           recogniser=self.recogniser, voice=self.voice,
                           moderator=self.moderator, abuse=self.abuse, backlog=self.backlog)

    @cached_property
    def moderator(self) -> Moderator:
        """The guard around the model (GUARD_BACKEND); its model loads on first use, which
        only the inference worker makes."""
        from workers.guards import build_guard

        return Moderator.from_settings(self.settings, build_guard(self.settings), self.metrics)

    @cached_property
    def abuse(self) -> AbuseScreen:
        """The block list and the per-person rate limit."""
        s = self.settings
        return AbuseScreen(BlockList(self.redis),
                           RateLimiter(self.redis, messages=s.rate_limit_messages,
                                       window_seconds=s.rate_limit_window_seconds))

    @cached_property
    def backlog(self) -> Backlog:
        """Turns waiting for their answer (the busy notice)."""
        return Backlog(self.redis, stale_after=self.settings.turn_timeout_seconds)

    @cached_property
    def voice(self) -> VoiceNotes:
        """A turn's voice notes, kept in Redis between hearing and answering."""
        return VoiceNotes(self.redis, ttl=max(self.settings.turn_timeout_seconds * 2, 600))

    def recogniser(self) -> BaseRecogniser:
        """The process's speech recogniser (ASR_BACKEND), built on first use; Whisper loads
        beside the chat model in the inference worker (`workers.lifecycle` warms it up)."""
        with self._recogniser_lock:
            if self._recogniser is None:
                from workers.asr import create_recogniser

                self._recogniser = create_recogniser(self.settings)
            return self._recogniser

    @cached_property
    def history(self) -> RedisHistory:
        return RedisHistory(self.redis, ttl=self.settings.history_ttl_seconds,
                            max_turns=self.settings.history_max_turns)

    @cached_property
    def conversation_log(self) -> ConversationLog:
        """The durable log admins review (DATABASE_URL)."""
        return ConversationLog(self.settings.database_url)

    @cached_property
    def metrics(self) -> RedisMetrics:
        return RedisMetrics(self.redis)

    @cached_property
    def workers(self) -> WorkerRegistry:
        return WorkerRegistry(self.redis)

    # --- async, per thread ---------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        runner = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
        return runner.run(coro)

    def adapter(self, platform: Platform) -> BaseAdapter:
        adapters = getattr(self._local, "adapters", None)
        if adapters is None:
            adapters = self._local.adapters = {}
        if platform not in adapters:
            adapters[platform] = adapter_class(platform)(self.settings)
        return adapters[platform]

    # --- the model -----------------------------------------------------------------------------
    def engine(self) -> Any:
        """The process's batching engine, loaded on first use (never in the web process)."""
        with self._engine_lock:
            if self.engine_failure is not None:
                raise ModelUnavailable(self.engine_failure)
            if self._engine is None:
                s = self.settings
                if s.model_backend == "openai":
                    self._engine = self._openai_engine()
                    return self._engine
                from workers.engines.batching import BatchingEngine
                from workers.engines.transformers import TransformersEngine

                engine = TransformersEngine(s.model_id, s.processor_id, device=s.engine_device,
                                            max_image_pixels=s.max_image_pixels,
                                            max_context_tokens=s.max_context_tokens)
                log.info("loading model %s", s.model_id)
                engine.load()
                self._engine = BatchingEngine(engine, max_batch=s.engine_max_batch_size,
                                              max_wait=s.engine_max_wait_ms / 1000)
            return self._engine


    def _openai_engine(self) -> Any:
        """The server batches by itself: requests go straight to it, many at a time."""
        from workers.engines.openai import OpenAIEngine

        s = self.settings
        assert s.openai_base_url
        engine = OpenAIEngine(
            s.openai_base_url, s.openai_model or s.model_id,
            s.openai_api_key.get_secret_value() if s.openai_api_key else None,
            timeout=s.openai_timeout_seconds, max_image_pixels=s.max_image_pixels,
            concurrency=max(s.engine_max_batch_size, 16))
        log.info("using the OpenAI-compatible server at %s", s.openai_base_url)
        engine.load()
        return engine


class ModelUnavailable(RuntimeError):
    """The model failed to load; the message says why and what to do."""


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(get_settings())
        return _runtime
