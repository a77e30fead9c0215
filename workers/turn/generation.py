"""Generation: the model request of a turn (`job`), and running it (`run`).

    job   the prompt: the system prompt with the reply-language instruction, the conversation's
          history within its token budget (read with the turn's start), and the person's turn;
          images as history image ids, pixels for the newest `MAX_HISTORY_IMAGES` only
    run   the guard on the input, the model (streaming drafts through the guard where the
          platform shows them), one more try with a firmer instruction when the answer is
          confidently in another language, the guard on the answer; never raises for the
          model's own failures: the outcome then carries the error and the turn apologises

Whether the job runs in this process or in an inference worker is the service's business
(`TurnService.generate` for a job that crossed Celery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import redis

from bot.kernel.language import clean, is_other_language
from bot.kernel.prompt import clean_reply, system_prompt
from bot.kernel.texts import REPLY_INSTRUCTION
from bot.kernel.tokens import estimate_tokens
from storage.history import HistoryEntry, RedisHistory
from storage.metrics import RedisMetrics
from workers.faults import FaultInjector
from workers.models.chat.base import ChatTurn, GenerationRequest, GenerationResult
from workers.moderation import DraftChecker, GuardDecision
from workers.protocol import GenerationJob, GenerationOutcome, JobTurn, Turn
from workers.turn.knowledge import reference
from workers.turn.moderation import Moderation

log = logging.getLogger(__name__)

#: Only the newest images of a conversation go to the model as pixels; older ones as a mention.
MAX_HISTORY_IMAGES = 3
#: What the history's estimate counts for an image (`storage.history.estimate_tokens`).
TOKENS_PER_IMAGE = 256
#: Answers shorter than this (in letters) are not checked for their language.
MIN_CHECKED_LETTERS = 20


class Engine(Protocol):
    def generate(self, request: GenerationRequest) -> GenerationResult: ...


class Generation:
    def __init__(self, *, system: str, history_max_tokens: int, max_new_tokens: int,
                 language_check: bool, history: RedisHistory, engine: Callable[[], Engine],
                 moderation: Moderation, metrics: RedisMetrics, faults: FaultInjector,
                 purpose: str = "") -> None:
        self._system = system
        self._purpose = purpose
        self._history_max_tokens = history_max_tokens
        self._max_new_tokens = max_new_tokens
        self._language_check = language_check
        self._history = history
        self._engine = engine
        self._moderation = moderation
        self._metrics = metrics
        self._faults = faults

    def history_budget(self, turn: Turn) -> int:
        """The tokens the history may take beside this turn's words."""
        grounding = sum(estimate_tokens(p.text) for p in turn.grounding.passages)
        pages = TOKENS_PER_IMAGE * len(turn.documents.image_ids)
        return max(self._history_max_tokens - len(turn.user_content) // 4 - grounding - pages,
                   0)

    def job(self, turn: Turn, lease: str, history: Sequence[HistoryEntry]) -> GenerationJob:
        """The model request: image ids, not bytes (read where the model runs)."""
        plan = turn.plan
        turns = [JobTurn(role=e.role, text=e.text, image_ids=e.image_ids)
                 for e in ([] if plan.reset else history)]
        turns.append(JobTurn(role="user", text=turn.user_content, image_ids=turn.image_ids))
        # Keep pixels for the newest images only (all of this turn's: its photos and a file's
        # scanned pages); older ones become a short mention.
        seen = 0
        limit = max(MAX_HISTORY_IMAGES, len(turn.image_ids))
        for index in reversed(range(len(turns))):
            item = turns[index]
            kept: list[str] = []
            mention = item.text
            for image_id in reversed(item.image_ids):
                if seen < limit:
                    kept.append(image_id)
                    seen += 1
                else:
                    mention = f"[photo] {mention}".strip()
            turns[index] = item.model_copy(update={"text": mention,
                                                   "image_ids": tuple(reversed(kept))})
        return GenerationJob(turn_id=plan.turn_id, lease=lease, key=plan.key,
                             system=system_prompt(self._system, plan.language,
                                                  reference(turn.grounding),
                                                  purpose=self._purpose),
                             turns=tuple(turns), max_new_tokens=self._max_new_tokens,
                             language=plan.language, stream=turn.stream)

    def run(self, job: GenerationJob,
            publish: Callable[[str], None] | None = None) -> GenerationOutcome:
        """Run the job; with `publish` (streaming), the answer so far is handed to it as it
        grows (through the guard when it checks answers)."""
        decisions: list[GuardDecision] = []
        drafts: DraftChecker | None = None
        try:
            self._faults.check("generate", job.turns[-1].text if job.turns else "")
            turns = tuple(
                ChatTurn(role=t.role, text=t.text,
                         images=tuple(img for i in t.image_ids
                                      if (img := self._history.image(job.key, i)) is not None))
                for t in job.turns)
            refused = self._moderation.check_input(job, turns[-1], decisions)
            if refused is not None:
                return refused
            on_partial: Callable[[str], None] | None = None
            if job.stream and publish is not None:
                drafts = self._moderation.drafts(job, publish)
                checker = drafts
                on_partial = ((lambda answer: checker.offer(clean_reply(answer)))
                              if checker is not None
                              else (lambda answer: publish(clean_reply(answer))))
            request = GenerationRequest(system=job.system, turns=turns,
                                        max_new_tokens=job.max_new_tokens,
                                        on_partial=on_partial)
            result = self._engine().generate(request)
            target = job.language
            if (target and not result.error and self._language_check
                    and _wrong_language(result.text, target)):
                # Once more, with the instruction repeated in the user's own turn.
                log.info("turn %s: answer not in %s; generating again", job.turn_id, target)
                self._metrics.inc("regenerations")
                result = self._engine().generate(_firmer(request, target))
        except redis.RedisError:
            raise
        except Exception as exc:  # an answer must come back, even if it is an error
            log.exception("turn %s: generation failed", job.turn_id)
            if drafts is not None:
                drafts.close()
            return GenerationOutcome(error=f"{type(exc).__name__}: {exc}")
        log.info("turn %s: generated %d tokens in %.2fs", job.turn_id, result.completion_tokens,
                 result.seconds, extra={"conversation": job.key.log_id(), "turn": job.turn_id})
        if result.completion_tokens and result.seconds > 0:
            self._metrics.inc("generated_tokens", result.completion_tokens)
            self._metrics.observe("generation_seconds", result.seconds)
            self._metrics.observe("batch_size", result.batch_size)
            self._metrics.observe("generation_tokens_per_second",
                                  result.completion_tokens / result.seconds)
        return self._moderation.check_output(job, GenerationOutcome(
            text=result.text, error=result.error, prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens, seconds=result.seconds),
            decisions, drafts)


def _wrong_language(answer: str, target: str) -> bool:
    """True when the answer is confidently in another language than `target`."""
    cleaned = clean_reply(answer)
    if len(clean(cleaned)) < MIN_CHECKED_LETTERS:
        return False
    return is_other_language(cleaned, target)


def _firmer(request: GenerationRequest, target: str) -> GenerationRequest:
    instruction = REPLY_INSTRUCTION.get(target) or REPLY_INSTRUCTION["en"]
    *earlier, last = request.turns
    nudged = ChatTurn(role=last.role, text=f"{last.text}\n\n({instruction})".strip(),
                      images=last.images)
    return replace(request, system=f"{request.system}\n\n{instruction}",
                   turns=(*earlier, nudged))
