"""Knowledge: the operator's passages for the person's question (`storage.knowledge`), within
the prompt's token budget, and the sources line the bot writes under the answer.

    find      the mode (auto: off while the knowledge base is empty, checked at most every
              30 s; assist; strict), one search (SQL, no Redis), the passages in rank order
              until KNOWLEDGE_MAX_TOKENS; strict with nothing relevant: declined (the polite
              "not found" is the answer, no model)
    sources   "Sources: Clinic handbook, p. 3, 5" in the person's language: the passages the
              answer cites ([1], [2]), else the best one; the markers themselves are dropped
    record    what the log keeps of them (JSON on the answer's row)

A database error never fails the turn: assist goes on without passages, strict declines.
"""

from __future__ import annotations

import json
import logging
import re
import time

from bot.kernel.prompt import reference_block
from bot.kernel.texts import Text, text
from bot.kernel.tokens import estimate_tokens
from storage.knowledge import Hit, KnowledgeBase
from workers.protocol import Grounding, GroundPassage, KnowledgeMode, TurnPlan

log = logging.getLogger(__name__)

#: How long "the knowledge base is empty" is believed (auto mode).
EMPTY_CHECK_SECONDS = 30.0
_CITATION = re.compile(r" ?\[(\d{1,2})\]")


class Knowledge:
    def __init__(self, *, mode: str, base: KnowledgeBase | None, top_k: int, max_tokens: int,
                 min_relevance: float, min_similarity: float = 0.5) -> None:
        self._mode = mode
        self._base = base
        self._top_k = top_k
        self._max_tokens = max_tokens
        self._min_relevance = min_relevance
        self._min_similarity = min_similarity
        self._empty_until = 0.0

    def mode(self) -> KnowledgeMode:
        if self._base is None or self._mode == "off":
            return KnowledgeMode.OFF
        if self._mode != "auto":
            return KnowledgeMode(self._mode)
        now = time.monotonic()
        if now < self._empty_until:
            return KnowledgeMode.OFF
        try:
            empty = self._base.is_empty()
        except Exception as exc:
            log.warning("knowledge base unavailable: %s", type(exc).__name__)
            return KnowledgeMode.OFF
        if empty:
            self._empty_until = now + EMPTY_CHECK_SECONDS
            return KnowledgeMode.OFF
        return KnowledgeMode.ASSIST

    def _relevant(self, hit: Hit) -> bool:
        """The best passage is relevant when it matches KNOWLEDGE_MIN_RELEVANCE of the
        question's weight (full text) or, with embeddings on, when its cosine similarity
        reaches KNOWLEDGE_MIN_SIMILARITY."""
        return hit.relevance >= self._min_relevance or (
            hit.similarity is not None and hit.similarity >= self._min_similarity)

    def find(self, plan: TurnPlan) -> Grounding:
        mode = self.mode()
        question = plan.user_text.strip()
        if mode is KnowledgeMode.OFF or self._base is None or not question or plan.reset:
            return Grounding(mode=mode)
        try:
            hits = self._base.search(question, self._top_k)
        except Exception as exc:
            log.warning("turn %s: knowledge search failed: %s", plan.turn_id,
                        type(exc).__name__)
            return Grounding(mode=mode, declined=mode is KnowledgeMode.STRICT)
        if not hits or not self._relevant(hits[0]):
            return Grounding(mode=mode, declined=mode is KnowledgeMode.STRICT)
        kept: list[GroundPassage] = []
        budget = self._max_tokens
        for hit in hits:
            cost = estimate_tokens(hit.text) + estimate_tokens(hit.title) + 8
            if cost > budget:
                break
            budget -= cost
            kept.append(_passage(hit, hit.text))
        if not kept:  # the best passage alone is over the budget: its start
            kept.append(_passage(hits[0], hits[0].text[:self._max_tokens * 2]))
        return Grounding(mode=mode, passages=tuple(kept))


def _passage(hit: Hit, body: str) -> GroundPassage:
    return GroundPassage(id=hit.passage_id, document_id=hit.document_id, title=hit.title,
                         page=hit.page, section=hit.section, text=body,
                         score=round(hit.score, 3))


def reference(grounding: Grounding) -> str:
    """The passages as the system prompt lists them (empty without passages)."""
    if not grounding.passages:
        return ""
    return reference_block([(_label(p), p.text) for p in grounding.passages],
                           strict=grounding.mode is KnowledgeMode.STRICT)


def _label(passage: GroundPassage) -> str:
    parts = [passage.title]
    if passage.page:
        parts.append(f"p. {passage.page}")
    if passage.section:
        parts.append(passage.section)
    return " — ".join(parts)


def cited(grounding: Grounding, answer: str) -> tuple[str, tuple[GroundPassage, ...]]:
    """The answer without its [n] markers, and the passages it cited (the best one when it
    cited none)."""
    if not grounding.passages or not answer:
        return answer, ()
    numbers: list[int] = []
    for match in _CITATION.finditer(answer):
        n = int(match.group(1))
        if 1 <= n <= len(grounding.passages) and n not in numbers:
            numbers.append(n)
    used = tuple(grounding.passages[n - 1] for n in numbers) or grounding.passages[:1]
    cleaned = _CITATION.sub(
        lambda m: "" if 1 <= int(m.group(1)) <= len(grounding.passages) else m.group(), answer)
    return cleaned.strip(), used


def sources_line(used: tuple[GroundPassage, ...], language: str) -> str:
    """'_Sources: Clinic handbook, p. 3, 5_' (Markdown italics: each platform renders it)."""
    documents: dict[int, tuple[str, list[int]]] = {}
    for passage in used:
        title, pages = documents.setdefault(passage.document_id, (passage.title, []))
        if passage.page and passage.page not in pages:
            pages.append(passage.page)
    named = []
    for title, pages in documents.values():
        if pages:
            first, *rest = sorted(pages)
            named.append(", ".join([f"{title}, {text(Text.PAGE, language, page=first)}",
                                    *map(str, rest)]))
        else:
            named.append(title)
    return f"_{text(Text.SOURCES, language)}: {'; '.join(named)}_"


def record(grounding: Grounding) -> str | None:
    """The log's JSON of the passages put in the prompt (None when there were none)."""
    if not grounding.passages:
        return None
    return json.dumps([{"p": p.id, "d": p.document_id, "t": p.title, "pg": p.page,
                        "s": p.score} for p in grounding.passages], ensure_ascii=False)
