"""Moderation: the guard on both sides of the model (GUARD_BACKEND), as a stage of the turn.

    check_input     before generation, on the person's whole turn and photos (and their recent
                    words): a flagged turn never reaches the model (`Refusal.INPUT`)
    drafts          streamed drafts shown only once the guard found them safe; a flagged
                    draft is cleared and the answer withheld (`Refusal.DRAFT`)
    check_output    the whole answer: a flagged one is withheld (`Refusal.OUTPUT`)
    refusal         what the person gets instead (GUARD_BLOCKED_REPLY, or the refusal in their
                    language; the apology when the guard could not answer and GUARD_FAIL=closed)
    records         the decisions as the conversation log keeps them

The guard itself, its windows and its fail policy are `workers.moderation.Moderator`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.kernel.prompt import clean_reply
from bot.kernel.texts import Text, text
from storage.log import GuardRecord
from workers.models.chat.base import ChatTurn
from workers.moderation import DraftChecker, GuardDecision, Moderator
from workers.protocol import (
    GenerationJob,
    GenerationOutcome,
    GuardCheck,
    GuardLabel,
    GuardSide,
    Refusal,
    Turn,
)

log = logging.getLogger(__name__)


class Moderation:
    def __init__(self, moderator: Moderator | None) -> None:
        self.moderator = moderator

    @property
    def on(self) -> bool:
        return self.moderator is not None

    def check_input(self, job: GenerationJob, turn: ChatTurn,
                    decisions: list[GuardDecision]) -> GenerationOutcome | None:
        """The guard on the person's text (with their recent turns) and photos; an outcome
        when it refuses the turn."""
        if self.moderator is None:
            return None
        history = [t.text for t in job.turns[:-1] if t.role == "user"]
        decision = self.moderator.check_input(turn.text, turn.images, job.language, history)
        if decision is None:
            return None
        decisions.append(decision)
        if not decision.blocked:
            return None
        log.info("turn %s: refused before generation (%s)", job.turn_id, decision.label)
        return GenerationOutcome(refused=Refusal.INPUT, guard=checks(decisions))

    def drafts(self, job: GenerationJob, publish: Callable[[str], None]) -> DraftChecker | None:
        """A checker between the streamed answer and `publish` (None: show drafts as they
        come, the guard being off for answers)."""
        if self.moderator is None or not self.moderator.output_on:
            return None
        prompt = job.turns[-1].text if job.turns else ""
        return DraftChecker(self.moderator, prompt, job.language, publish)

    def check_output(self, job: GenerationJob, outcome: GenerationOutcome,
                     decisions: list[GuardDecision],
                     drafts: DraftChecker | None) -> GenerationOutcome:
        """The guard on the answer: a flagged one (or a flagged draft) is withheld."""
        flagged_draft = False
        if drafts is not None:
            drafts.close()
            flagged_draft = drafts.flagged
            decisions.extend(d for d in drafts.decisions if d.blocked)
        answer = clean_reply(outcome.text)
        decision = None
        if self.moderator is not None and not flagged_draft and answer and not outcome.error:
            prompt = job.turns[-1].text if job.turns else ""
            decision = self.moderator.check_output(prompt, answer, job.language)
            if decision is not None:
                decisions.append(decision)
        update: dict[str, Any] = {"guard": checks(decisions)}
        if flagged_draft or (decision is not None and decision.blocked):
            log.info("turn %s: answer withheld by the guard", job.turn_id)
            update.update(text="", refused=Refusal.DRAFT if flagged_draft else Refusal.OUTPUT,
                          withheld=answer)
        return outcome.model_copy(update=update)

    def refusal(self, language: str, outcome: GenerationOutcome) -> str:
        """What the person gets for a refused turn: the refusal, or the apology when the
        guard could not answer (GUARD_FAIL=closed)."""
        if any(c.blocked and c.label is GuardLabel.ERROR for c in outcome.guard):
            return text(Text.APOLOGY, language)
        if self.moderator is not None:
            return self.moderator.refusal(language)
        return text(Text.GUARD_REFUSAL, language)

    @staticmethod
    def records(turn: Turn, outcome: GenerationOutcome | None) -> dict[str, Any]:
        """The guard's decisions (and a held turn's mark) as the log keeps them."""
        records: dict[str, Any] = {}
        if turn.plan.held is not None:
            records["input_guard"] = GuardRecord(turn.plan.held.value)
        for check in outcome.guard if outcome is not None else ():
            side = "input_guard" if check.side is GuardSide.INPUT else "output_guard"
            records[side] = GuardRecord(check.label.value, check.categories, check.latency_ms)
        if outcome is not None and outcome.withheld:
            records["withheld"] = outcome.withheld
        return records


def checks(decisions: list[GuardDecision]) -> tuple[GuardCheck, ...]:
    return tuple(GuardCheck.model_validate(d.as_json()) for d in decisions)
