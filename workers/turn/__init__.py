"""The turn as stages, and `TurnService`, their sequence (`workers.turn.service`).

    screening    the block list and the rate limit, before anything reads a message
    planning     language, commands, notices, the person's words (no I/O)
    hearing      voice notes: checked, heard beside the model, folded into the words
    media        photos: downloaded, decoded under a budget, stored with the history
    reading      files sent in chat: downloaded, read under a budget, their text in the turn,
                 scanned pages as images
    moderation   the guard on both sides of the model
    generation   the model request and its run
    delivery     compose, send, log, history and release
    presence     typing, streamed drafts, the busy notice
    knowledge    the operator's passages for the question, and the answer's sources

`assemble` wires the stages from the services they use; the composition root
(`bot.composition.Services.turns`) and the tests call it. A new feature adds a stage (or a step
in one), and its place in `TurnService`'s sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from adapters.base import BaseAdapter
from bot.kernel.messages import Platform
from bot.kernel.settings import Settings
from storage.abuse import AbuseScreen, Backlog
from storage.conversations import ConversationStore
from storage.handoff import HandoffStore
from storage.history import RedisHistory
from storage.knowledge import KnowledgeBase
from storage.log import ConversationLog
from storage.metrics import RedisMetrics
from storage.voice import VoiceNotes
from workers.decoding import DecodeSandbox, shared_sandbox
from workers.faults import FaultInjector
from workers.handoff_notify import HandoffNotifier
from workers.leases import LeaseKeeper
from workers.models.speech.base import BaseRecogniser
from workers.moderation import Moderator
from workers.turn.budget import MonthlyBudget
from workers.turn.delivery import Delivery
from workers.turn.generation import Engine, Generation
from workers.turn.hearing import Hearing
from workers.turn.knowledge import Knowledge
from workers.turn.media import Media
from workers.turn.moderation import Moderation
from workers.turn.planning import Planner
from workers.turn.presence import Presence
from workers.turn.reading import Reading
from workers.turn.screening import Screening
from workers.turn.service import SendRefused, Stages, TurnBusy, TurnService

__all__ = ["SendRefused", "TurnBusy", "TurnService", "assemble"]


def assemble(settings: Settings, *, store: ConversationStore, history: RedisHistory,
             conversation_log: ConversationLog, metrics: RedisMetrics,
             adapters: Callable[[Platform], BaseAdapter], engine: Callable[[], Engine],
             run: Callable[[Coroutine[Any, Any, Any]], Any],
             leases: LeaseKeeper | None = None, faults: FaultInjector | None = None,
             recogniser: Callable[[], BaseRecogniser] | None = None,
             voice: VoiceNotes | None = None, moderator: Moderator | None = None,
             abuse: AbuseScreen | None = None, backlog: Backlog | None = None,
             sandbox: DecodeSandbox | None = None,
             knowledge: KnowledgeBase | None = None,
             handoffs: HandoffStore | None = None) -> TurnService:
    """The turn service with its stages, from the services they use (optional ones absent:
    no guard, no abuse screen, no busy notice, no speech recognition, no knowledge base)."""
    s = settings
    faults = faults or FaultInjector(None)
    sandbox = sandbox or shared_sandbox(settings)
    moderation = Moderation(moderator)
    budget = MonthlyBudget(store, s.whatsapp_monthly_message_budget)
    hearing = Hearing(max_seconds=s.asr_max_seconds, adapters=adapters, run=run, voice=voice,
                      recogniser=recogniser, sandbox=sandbox, metrics=metrics, faults=faults)
    stages = Stages(
        screening=Screening(abuse, metrics, budget),
        planner=Planner(default_language=s.default_language, adapters=adapters, run=run,
                        store=store, history=history, faults=faults,
                        handoffs=handoffs or HandoffStore(store.client,
                                                          ttl=s.handoff_ttl_seconds,
                                                          keys=store.keys),
                        notify=HandoffNotifier(settings).requested),
        hearing=hearing,
        media=Media(max_image_pixels=s.max_image_pixels, adapters=adapters, run=run,
                    history=history, sandbox=sandbox, faults=faults),
        moderation=moderation,
        generation=Generation(system=s.system_prompt, purpose=s.bot_purpose,
                              history_max_tokens=s.history_max_tokens,
                              max_new_tokens=s.max_new_tokens,
                              language_check=s.reply_language_check, history=history,
                              engine=engine, moderation=moderation, metrics=metrics,
                              faults=faults),
        delivery=Delivery(model_id=s.model_id, history_ttl=s.history_ttl_seconds,
                          keep_audio=s.asr_keep_audio, store=store, history=history,
                          log=conversation_log, adapters=adapters, run=run, hearing=hearing,
                          moderation=moderation, metrics=metrics, faults=faults,
                          budget=budget, feedback_buttons=s.feedback_buttons),
        presence=Presence(typing_timeout=s.turn_timeout_seconds,
                          stream_interval=s.stream_interval_seconds,
                          busy_seconds=s.busy_notice_seconds, adapters=adapters, run=run,
                          store=store, backlog=backlog, metrics=metrics),
        knowledge=Knowledge(mode=s.knowledge_mode, base=knowledge, top_k=s.knowledge_top_k,
                            max_tokens=s.knowledge_max_tokens,
                            min_relevance=s.knowledge_min_relevance,
                            min_similarity=s.knowledge_min_similarity),
        reading=Reading(max_pages=s.document_max_pages, max_tokens=s.document_max_tokens,
                        max_image_pixels=s.max_image_pixels, max_bytes=s.max_download_bytes,
                        adapters=adapters, run=run, history=history, sandbox=sandbox),
    )
    return TurnService(stages, store=store,
                       leases=leases or LeaseKeeper(store,
                                                    max_hold_seconds=s.turn_timeout_seconds),
                       metrics=metrics, default_language=s.default_language,
                       album_window=s.album_window_seconds, history_turns=s.history_max_turns)
