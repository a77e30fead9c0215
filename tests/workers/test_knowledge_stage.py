"""The turn's knowledge stage: modes, the relevance threshold, the token budget, the citations
and the sources line in the person's language (workers/turn/knowledge.py)."""

from __future__ import annotations

import json

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.knowledge import Hit
from workers.protocol import Grounding, GroundPassage, KnowledgeMode, Turn, TurnPlan
from workers.turn.knowledge import Knowledge, cited, record, reference, sources_line

KEY = ConversationKey(platform=Platform.TELEGRAM, bot_id="b", chat_id="1", user_id="1")


def plan(words: str = "When does the clinic open?") -> TurnPlan:
    return TurnPlan(turn_id="t1", key=KEY, language="th", user_text=words)


def hit(n: int, relevance: float = 0.8, text_: str = "The clinic opens at 8 am.",
        page: int | None = 3) -> Hit:
    return Hit(passage_id=n, document_id=10 + n, title=f"Doc {n}", page=page, section=None,
               text=text_, score=10.0 - n, relevance=relevance)


class FakeBase:
    def __init__(self, hits: list[Hit], empty: bool = False, fails: bool = False) -> None:
        self.hits, self.empty, self.fails = hits, empty, fails
        self.searches = 0
        self.empty_checks = 0

    def search(self, query: str, k: int = 5) -> list[Hit]:
        self.searches += 1
        if self.fails:
            raise RuntimeError("database away")
        return self.hits[:k]

    def is_empty(self) -> bool:
        self.empty_checks += 1
        return self.empty


def stage(base: FakeBase | None, mode: str = "assist", max_tokens: int = 1500) -> Knowledge:
    return Knowledge(mode=mode, base=base, top_k=5, max_tokens=max_tokens,  # type: ignore[arg-type]
                     min_relevance=0.3)


def test_assist_puts_the_passages_in_rank_order():
    grounding = stage(FakeBase([hit(1), hit(2)])).find(plan())
    assert grounding.mode is KnowledgeMode.ASSIST and not grounding.declined
    assert [p.id for p in grounding.passages] == [1, 2]
    prompt = reference(grounding)
    assert "[1] Doc 1 — p. 3\nThe clinic opens at 8 am." in prompt
    assert "general knowledge" in prompt


def test_strict_declines_when_the_best_passage_is_not_relevant():
    base = FakeBase([hit(1, relevance=0.1)])
    grounding = stage(base, "strict").find(plan())
    assert grounding.declined and grounding.passages == ()
    turn = Turn(plan=plan(), grounding=grounding)
    assert not turn.needs_model  # the decline is the answer
    assert stage(FakeBase([hit(1)]), "strict").find(plan()).passages


def test_a_database_error_never_fails_the_turn():
    assert stage(FakeBase([], fails=True), "assist").find(plan()) == Grounding(
        mode=KnowledgeMode.ASSIST)
    assert stage(FakeBase([], fails=True), "strict").find(plan()).declined


def test_auto_is_off_while_the_knowledge_base_is_empty_and_checks_it_rarely():
    base = FakeBase([hit(1)], empty=True)
    knowledge = stage(base, "auto")
    assert knowledge.find(plan()).mode is KnowledgeMode.OFF
    assert knowledge.find(plan()).mode is KnowledgeMode.OFF
    assert base.empty_checks == 1 and base.searches == 0
    assert stage(FakeBase([hit(1)]), "auto").find(plan()).mode is KnowledgeMode.ASSIST
    assert stage(None, "strict").find(plan()).mode is KnowledgeMode.OFF


def test_the_passages_stay_within_the_token_budget():
    long = "word " * 400  # about 500 tokens
    grounding = stage(FakeBase([hit(1, text_=long), hit(2, text_=long), hit(3, text_=long)]),
                      max_tokens=1100).find(plan())
    assert [p.id for p in grounding.passages] == [1, 2]


def test_citations_become_the_sources_line_in_the_persons_language():
    passages = (GroundPassage(id=1, document_id=5, title="Handbook", page=3, text="a"),
                GroundPassage(id=2, document_id=5, title="Handbook", page=5, text="b"),
                GroundPassage(id=3, document_id=6, title="Price list", text="c"))
    grounding = Grounding(mode=KnowledgeMode.ASSIST, passages=passages)
    answer, used = cited(grounding, "Open at 8 [1], also Saturdays [2]. See [9].")
    assert answer == "Open at 8, also Saturdays. See [9]."
    assert [p.id for p in used] == [1, 2]
    line = sources_line(used, "th")
    assert line == f"_{text(Text.SOURCES, 'th')}: Handbook, {text(Text.PAGE, 'th', page=3)}, 5_"
    # No citation: the best passage is named.
    assert [p.id for p in cited(grounding, "Open at 8.")[1]] == [1]
    assert sources_line(passages[2:], "zh") == "_来源: Price list_"
    assert json.loads(record(grounding) or "")[0] == {"p": 1, "d": 5, "t": "Handbook",
                                                       "pg": 3, "s": 0.0}
