"""The knowledge base on SQLite and PostgreSQL: add, search, remove, and the same ranking on
both (storage/knowledge.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from storage.knowledge import VERSION_TERM, AlreadyThere, KnowledgeBase, NewPassage
from storage.log.models import KnowledgePosting, KnowledgeTerm
from tests.helpers.conversation_log import empty_postgres, sqlite_log

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "knowledge"


def add(kb: KnowledgeBase, title: str, *texts: str, page: int | None = None):
    return kb.add(title=title, filename=f"{title}.txt", mime_type="text/plain",
                  sha256=hashlib.sha256("|".join((title, *texts)).encode()).hexdigest(),
                  size_bytes=10, pages=None, added_by="test",
                  passages=[NewPassage(t, page=page) for t in texts])


@pytest.fixture
def kb(conversation_log) -> KnowledgeBase:
    return KnowledgeBase(conversation_log.engine)


def test_add_search_and_remove(kb):
    assert kb.is_empty()
    hours = add(kb, "Clinic handbook", "The clinic is open Monday to Friday, 8 am to 5 pm.",
                "A consultation for adults costs 150 baht.", page=3)
    add(kb, "Pharmacy", "The pharmacy is open every day until 9 pm.")
    assert not kb.is_empty()
    hits = kb.search("How much does a consultation cost?")
    assert hits[0].title == "Clinic handbook"
    assert hits[0].page == 3
    assert hits[0].text == "A consultation for adults costs 150 baht."
    assert 0 < hits[0].relevance <= 1
    with pytest.raises(AlreadyThere):
        add(kb, "Clinic handbook", "The clinic is open Monday to Friday, 8 am to 5 pm.",
            "A consultation for adults costs 150 baht.", page=3)
    row, passages = kb.document(hours.id)
    assert row.passages == 2 and [p.position for p in passages] == [0, 1]
    assert kb.remove(hours.id).title == "Clinic handbook"
    assert kb.remove(hours.id) is None
    assert all(h.title == "Pharmacy" for h in kb.search("consultation cost clinic"))
    with kb.session() as session:
        # The term counts follow: only the pharmacy's terms are left, each counted once.
        assert session.scalar(select(func.max(KnowledgeTerm.df))) == 1
        assert session.scalar(select(func.count()).select_from(KnowledgeTerm)
                              .where(~KnowledgeTerm.term.startswith(VERSION_TERM))) == \
            session.scalar(select(func.count()).select_from(KnowledgePosting))
    assert [d.title for d in kb.documents()] == ["Pharmacy"]


def test_a_question_sharing_nothing_finds_nothing(kb):
    add(kb, "Clinic handbook", "The clinic is open Monday to Friday, 8 am to 5 pm.")
    assert kb.search("ภูเขาไฟ") == []
    assert kb.search("") == []


def _ask(kb: KnowledgeBase, language: str) -> tuple[float, list[list[tuple[str, float]]]]:
    corpus = json.loads((CORPUS / f"{language}.json").read_text())
    ids = {add(kb, d["title"], d["text"]).id: d["id"] for d in corpus["documents"]}
    found = 0
    ranking = []
    for question in corpus["questions"]:
        hits = kb.search(question["q"])
        ranking.append([(ids[h.document_id], round(h.score, 6)) for h in hits])
        found += any(ids[h.document_id] in question["answer_ids"] for h in hits)
    return found / len(corpus["questions"]), ranking


@pytest.mark.parametrize("language", ["th", "my", "km", "lo", "vi", "zh", "ta"])
def test_unspaced_and_inflected_languages_are_found(kb, language):
    recall, _ = _ask(kb, language)
    assert recall >= 0.9


def test_passages_stored_under_another_token_scheme_are_tokenised_again(kb, monkeypatch):
    """A store made by another scheme (or before schemes were named) is re-tokenised: by the
    next add, by a process's first search, or by `reindex`; the counts end as a fresh add's."""
    from storage import knowledge

    monkeypatch.setattr(knowledge, "tokens", lambda text: text.split())
    monkeypatch.setattr(knowledge, "tokens_version", lambda: "old")
    add(kb, "เวลาเปิดห้องยา", "ห้องจ่ายยาเปิดเวลา 08.30 น. และปิดเวลา 18.00 น.")
    add(kb, "Clinic handbook", "The clinic is open Monday to Friday.")
    monkeypatch.undo()
    # Whitespace tokens never find a Thai word inside a run: the old index cannot answer.
    assert kb.search("ห้องยาเปิดกี่โมง")[0].title == "เวลาเปิดห้องยา"  # a stale instance re-reads
    with kb.session() as session:
        assert session.scalar(select(KnowledgeTerm.term)
                              .where(KnowledgeTerm.term.startswith(VERSION_TERM))) == \
            VERSION_TERM + knowledge.tokens_version()
        rebuilt = sorted(session.execute(select(KnowledgePosting.term, KnowledgePosting.tf)))
        terms = sorted(session.execute(select(KnowledgeTerm.term, KnowledgeTerm.df)
                                       .where(~KnowledgeTerm.term.startswith(VERSION_TERM))))
    assert kb.reindex() is None  # current now: nothing to do
    # What a fresh store holds for the same documents.
    fresh = KnowledgeBase(kb.engine)
    for document in fresh.documents():
        fresh.remove(document.id)
    add(fresh, "เวลาเปิดห้องยา", "ห้องจ่ายยาเปิดเวลา 08.30 น. และปิดเวลา 18.00 น.")
    add(fresh, "Clinic handbook", "The clinic is open Monday to Friday.")
    with fresh.session() as session:
        assert sorted(session.execute(select(KnowledgePosting.term, KnowledgePosting.tf))) == \
            rebuilt
        assert sorted(session.execute(select(KnowledgeTerm.term, KnowledgeTerm.df)
                                      .where(~KnowledgeTerm.term.startswith(VERSION_TERM)))) \
            == terms


def test_a_store_from_before_named_schemes_is_tokenised_again_on_add(kb):
    add(kb, "Pharmacy", "The pharmacy is open every day until 9 pm.")
    with kb._writes() as session, session.begin():  # as a store made before this change
        session.execute(delete(KnowledgeTerm).where(KnowledgeTerm.term.startswith(VERSION_TERM)))
        session.execute(update(KnowledgePosting).values(term=KnowledgePosting.term.concat("~")))
    add(kb, "Clinic handbook", "The clinic is open Monday to Friday.")
    assert [h.title for h in kb.search("pharmacy")] == ["Pharmacy"]
    with kb.session() as session:
        assert session.scalar(select(func.count()).select_from(KnowledgePosting)
                              .where(KnowledgePosting.term.endswith("~"))) == 0


@pytest.mark.integration
def test_sqlite_and_postgresql_rank_alike(tmp_path, postgres_log):
    """The same top five with the same scores: the databases only count, Python ranks."""
    lite = sqlite_log(tmp_path / "log.db")
    try:
        on_sqlite = KnowledgeBase(lite.engine)
        on_postgres = KnowledgeBase(empty_postgres(postgres_log).engine)
        for language in ("my", "vi"):
            assert _ask(on_sqlite, language) == _ask(on_postgres, language)
            for kb in (on_sqlite, on_postgres):  # removal leaves the counts as they were
                for document in kb.documents():
                    kb.remove(document.id)
    finally:
        lite.close()


def test_a_worker_start_makes_the_index_current(kb, monkeypatch):
    """`WorkerLife.warm_up_knowledge`: with KNOWLEDGE_MODE not off, a stale index is made again
    at the start (not on a person's first question); off, the database is not touched."""
    from types import SimpleNamespace

    from bot.kernel.settings import Settings
    from storage import knowledge
    from workers.lifecycle import WorkerLife

    monkeypatch.setattr(knowledge, "tokens", lambda text: text.split())
    monkeypatch.setattr(knowledge, "tokens_version", lambda: "old")
    add(kb, "Pharmacy", "The pharmacy is open every day until 9 pm.")
    monkeypatch.undo()

    def life(mode: str) -> WorkerLife:
        settings = Settings(_env_file=None, knowledge_mode=mode)
        return WorkerLife(SimpleNamespace(settings=settings, hosts_models=False,  # type: ignore[arg-type]
                                          knowledge=KnowledgeBase(kb.engine)), "test:1")

    def stored() -> str | None:
        with kb.session() as session:
            return session.scalar(select(KnowledgeTerm.term)
                                  .where(KnowledgeTerm.term.startswith(VERSION_TERM)))

    life("off").warm_up_knowledge()
    assert stored() == VERSION_TERM + "old"
    life("auto").warm_up_knowledge()
    assert stored() == VERSION_TERM + knowledge.tokens_version()
    with kb.session() as session:  # the postings are the scheme's: "^ph", "pharmacy_is", ...
        assert session.scalar(select(func.count()).select_from(KnowledgePosting)
                              .where(KnowledgePosting.term == "pharmacy_is")) == 1
