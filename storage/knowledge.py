"""The operator's knowledge base, in the conversation log's database (SQLite or PostgreSQL):
documents, their passages, and a postings table searched with BM25.

    add        a document's passages and their postings, and the term counts, in one
               transaction (the same file twice: `AlreadyThere`)
    search     BM25 (Lucene's idf, k1=1.2, b=0.75) over `bot.kernel.tokens`' tokens: the
               database reads the query terms' counts and postings, Python adds them up, so
               SQLite and PostgreSQL rank alike; each hit also carries its `relevance`, the
               share of the question's idf weight it matches (0-1: strict mode's threshold)
    documents / document / remove / is_empty   for the CLI, the console and the turn
    reindex    the postings made again from the stored passages when the token scheme
               (`bot.kernel.tokens.tokens_version`) is not the one they were made with: the
               scheme's name is kept as a term of its own (`VERSION_TERM`, with a space no token
               has, so no question ever looks it up); `add`, a process's first `search` and a
               worker's start (`prepare`) run it, `sealion-bot knowledge reindex` by hand

Embeddings (KNOWLEDGE_EMBEDDING_MODEL, off by default): with an `Embedder`, every passage also
has a vector (`knowledge_vectors`, float32, L2-normalised, with the model's name), made at `add`,
by `embed_missing` (a worker's start, `reindex`, and up to `LAZY_EMBED` passages per search) and
made again when the model is another. A search then ranks both ways, BM25 and cosine (brute
force in numpy over the vectors), and fuses the two top lists by reciprocal rank (k=60). An
embedder that cannot serve (`embed` returns None) leaves full text alone.

Nothing is cached in a process but that check and the vectors' matrix, which is read again when
the documents or the vectors changed (their counts, the newest document): a document added or
removed counts on the next turn.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import delete, func, insert, select, text, update

from bot.kernel.tokens import tokens, tokens_version
from storage.log.engine import LogDatabase
from storage.log.models import (
    KnowledgeDocument,
    KnowledgePassage,
    KnowledgePosting,
    KnowledgeTerm,
    KnowledgeVector,
)

_T = TypeVar("_T")
log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
#: At most this many of a question's terms are looked up, the rarest first.
MAX_QUERY_TERMS = 32
#: A question is read up to this many characters.
MAX_QUERY_CHARS = 500
_CHUNK = 500
#: A search's statements may take this long each on PostgreSQL (SQLite: its busy timeout).
SEARCH_TIMEOUT_MS = 2000
#: The term that names the token scheme of the stored postings ("tokens <version>").
VERSION_TERM = "tokens "
#: Reciprocal rank fusion's constant (Cormack et al., 2009).
RRF_K = 60
#: Each side's top list holds this many passages at least (then fused, then cut to k).
FUSED_DEPTH = 20
#: A search embeds at most this many passages that have no vector yet (the rest: next time,
#: a worker's start or `reindex`).
LAZY_EMBED = 64
_EMBED_BATCH = 32


class Embedder(Protocol):
    """Texts to L2-normalised vectors (`workers.models.embedding`; a fake in tests)."""

    #: The model's name, stored with each vector (another name: the vectors are made again).
    model: str

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """One float32 row per text, or None when the model cannot serve (logged by it)."""


class AlreadyThere(Exception):
    def __init__(self, document_id: int, title: str) -> None:
        super().__init__(f"already in the knowledge base as #{document_id} {title}")
        self.document_id = document_id
        self.title = title


@dataclass(frozen=True)
class NewPassage:
    text: str
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class DocumentRow:
    id: int
    title: str
    filename: str | None
    mime_type: str
    size_bytes: int
    pages: int | None
    passages: int
    created_at: dt.datetime
    added_by: str


@dataclass(frozen=True)
class PassageRow:
    id: int
    position: int
    page: int | None
    section: str | None
    text: str


@dataclass(frozen=True)
class Hit:
    passage_id: int
    document_id: int
    title: str
    page: int | None
    section: str | None
    text: str
    score: float
    #: The share (0-1) of the question's idf weight this passage matches.
    relevance: float
    #: Its cosine similarity to the question (-1-1), with embeddings on; else None.
    similarity: float | None = None


def _indexed(title: str, passage: NewPassage) -> list[str]:
    """A passage is indexed with its document's title and its section (the words people use)."""
    return tokens(" ".join(filter(None, (title, passage.section, passage.text))))


def _embedded(title: str, passage: NewPassage) -> str:
    """What a passage's vector is made of: its title, its section and its text."""
    return "\n".join(filter(None, (title, passage.section, passage.text)))


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


class KnowledgeBase(LogDatabase):
    #: This process has seen the stored postings made with its own token scheme.
    _current = False

    def __init__(self, url_or_engine: Any, embedder: Embedder | None = None) -> None:
        super().__init__(url_or_engine)
        self.embedder = embedder
        self._vectors_lock = threading.Lock()
        #: (the store's signature, passage ids, their vectors as rows)
        self._vectors: tuple[tuple[Any, ...], np.ndarray, np.ndarray] | None = None

    def add(self, *, title: str, filename: str | None, mime_type: str, sha256: str,
            size_bytes: int, pages: int | None, passages: Sequence[NewPassage],
            added_by: str) -> DocumentRow:
        title = title.strip()[:512] or (filename or "document")[:512]
        vectors = self._embed([_embedded(title, p) for p in passages]) if passages else None
        with self._writes() as session, session.begin():
            self._lock_terms(session)
            self._reindex(session)
            existing = session.execute(select(KnowledgeDocument.id, KnowledgeDocument.title)
                                       .where(KnowledgeDocument.sha256 == sha256)).first()
            if existing is not None:
                raise AlreadyThere(existing.id, existing.title)
            document = KnowledgeDocument(
                title=title, filename=(filename or None) and filename[:512],
                mime_type=mime_type[:128], sha256=sha256, size_bytes=size_bytes, pages=pages,
                passage_count=len(passages), created_at=dt.datetime.now(dt.UTC),
                added_by=added_by[:64])
            session.add(document)
            session.flush()
            df: Counter[str] = Counter()
            postings: list[dict[str, object]] = []
            ids: list[int] = []
            for position, passage in enumerate(passages):
                counts = Counter(_indexed(title, passage))
                row = KnowledgePassage(document_id=document.id, position=position,
                                       page=passage.page,
                                       section=passage.section and passage.section[:512],
                                       text=passage.text, length=sum(counts.values()))
                session.add(row)
                session.flush()
                ids.append(row.id)
                postings.extend({"term": t, "passage_id": row.id, "tf": n}
                                for t, n in counts.items())
                df.update(counts.keys())
            if postings:
                session.execute(insert(KnowledgePosting), postings)
            self._count_terms(session, df)
            if vectors is not None and self.embedder is not None:
                self._store_vectors(session, self.embedder.model, ids, vectors)
            return _document_row(document)

    def remove(self, document_id: int) -> DocumentRow | None:
        with self._writes() as session, session.begin():
            self._lock_terms(session)
            document = session.get(KnowledgeDocument, document_id)
            if document is None:
                return None
            gone = session.execute(
                select(KnowledgePosting.term, func.count())
                .join(KnowledgePassage, KnowledgePassage.id == KnowledgePosting.passage_id)
                .where(KnowledgePassage.document_id == document_id)
                .group_by(KnowledgePosting.term)).all()
            self._count_terms(session, Counter({term: -n for term, n in gone}))
            row = _document_row(document)
            session.execute(delete(KnowledgePosting).where(KnowledgePosting.passage_id.in_(
                select(KnowledgePassage.id).where(KnowledgePassage.document_id == document_id))))
            session.execute(delete(KnowledgeVector).where(KnowledgeVector.passage_id.in_(
                select(KnowledgePassage.id).where(KnowledgePassage.document_id == document_id))))
            session.execute(delete(KnowledgePassage)
                            .where(KnowledgePassage.document_id == document_id))
            session.execute(delete(KnowledgeDocument).where(KnowledgeDocument.id == document_id))
            return row

    def documents(self) -> list[DocumentRow]:
        with self.session() as session:
            return [_document_row(d) for d in session.scalars(
                select(KnowledgeDocument).order_by(KnowledgeDocument.id))]

    def document(self, document_id: int) -> tuple[DocumentRow, list[PassageRow]] | None:
        with self.session() as session:
            document = session.get(KnowledgeDocument, document_id)
            if document is None:
                return None
            rows = session.scalars(select(KnowledgePassage)
                                   .where(KnowledgePassage.document_id == document_id)
                                   .order_by(KnowledgePassage.position))
            return _document_row(document), [
                PassageRow(p.id, p.position, p.page, p.section, p.text) for p in rows]

    def is_empty(self) -> bool:
        with self.session() as session:
            return session.execute(select(KnowledgeDocument.id).limit(1)).first() is None

    def reindex(self) -> int | None:
        """The postings and term counts made again with this process's token scheme when the
        stored ones were made with another; the passages re-tokenised, or None when current."""
        with self._writes() as session, session.begin():
            self._lock_terms(session)
            done = self._reindex(session)
        self._current = True
        return done

    def prepare(self) -> bool:
        """The stored index made current (at a worker's start), and with embeddings on, the
        model loaded and every passage's vector made; whether any document is stored."""
        self._ensure_current()
        if self.embedder is not None:
            self.embed_missing()
        return not self.is_empty()

    def _ensure_current(self) -> None:
        if self._current:
            return
        with self.session() as session:
            stored = self._stored_version(session)
        if stored == tokens_version():
            self._current = True
        else:
            self.reindex()

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k best passages: BM25 alone, or with embeddings on, BM25's and cosine's top
        lists fused by reciprocal rank (`RRF_K`)."""
        query = query[:MAX_QUERY_CHARS]
        if k <= 0 or not query.strip():
            return []
        self._ensure_current()
        question = None
        if self.embedder is not None:
            self.embed_missing(limit=LAZY_EMBED)
            embedded = self._embed([query])
            question = None if embedded is None else embedded[0]
        depth = k if question is None else max(k, FUSED_DEPTH)
        with self.session() as session:
            if self.dialect == "postgresql":  # a turn never waits long on a slow database
                session.execute(text(f"SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}"))
            scores, matched, weight = self._bm25(session, query)
            top = sorted(scores, key=lambda p: (-round(scores[p], 9), p))[:depth]
            similarity: dict[int, float] = {}
            if question is not None and self.embedder is not None:
                ids, matrix = self._matrix(session, self.embedder.model)
                if len(ids) and matrix.shape[1] == question.shape[0]:
                    cosine = matrix @ question.astype(np.float32)
                    best = np.argsort(-cosine, kind="stable")[:depth]
                    similarity = {int(ids[i]): float(cosine[i]) for i in best}
                    fused: dict[int, float] = {}
                    for ranked in (top, [int(ids[i]) for i in best]):
                        for rank, passage_id in enumerate(ranked):
                            fused[passage_id] = fused.get(passage_id, 0.0) + 1 / (RRF_K + rank + 1)
                    top = sorted(fused, key=lambda p: (-round(fused[p], 12), p))
                    scores = fused
            top = top[:k]
            if not top:
                return []
            found = {r.id: r for r in session.execute(
                select(KnowledgePassage.id, KnowledgePassage.document_id,
                       KnowledgeDocument.title, KnowledgePassage.page,
                       KnowledgePassage.section, KnowledgePassage.text)
                .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgePassage.document_id)
                .where(KnowledgePassage.id.in_(top)))}
        return [Hit(passage_id=p, document_id=found[p].document_id, title=found[p].title,
                    page=found[p].page, section=found[p].section, text=found[p].text,
                    score=scores[p],
                    relevance=matched.get(p, 0.0) / weight if weight else 0.0,
                    similarity=similarity.get(p) if question is not None else None)
                for p in top if p in found]

    def _bm25(self, session: Any, query: str) -> tuple[dict[int, float], dict[int, float],
                                                       float]:
        """Each passage's BM25 score, the idf weight of the question's terms it matches, and
        the question's whole idf weight."""
        wanted = sorted(set(tokens(query)))
        if not wanted:
            return {}, {}, 0.0
        n, total = session.execute(select(func.count(), func.sum(KnowledgePassage.length))).one()
        if not n:
            return {}, {}, 0.0
        n = int(n)
        avglen = int(total or 0) / n or 1.0
        df: dict[str, int] = {}
        for part in _chunks(wanted):
            df.update(session.execute(select(KnowledgeTerm.term, KnowledgeTerm.df)
                                      .where(KnowledgeTerm.term.in_(part))).tuples().all())
        idf = {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5))
               for t in wanted}
        weight = sum(idf.values())
        kept = sorted(df, key=lambda t: (df[t], t))[:MAX_QUERY_TERMS]
        scores: dict[int, float] = {}
        matched: dict[int, float] = {}
        if not kept:
            return scores, matched, weight
        rows = session.execute(
            select(KnowledgePosting.passage_id, KnowledgePosting.term, KnowledgePosting.tf,
                   KnowledgePassage.length)
            .join(KnowledgePassage, KnowledgePassage.id == KnowledgePosting.passage_id)
            .where(KnowledgePosting.term.in_(kept))).all()
        for passage_id, term, tf, length in sorted(rows):  # one order on every backend
            norm = tf + K1 * (1 - B + B * length / avglen)
            scores[passage_id] = scores.get(passage_id, 0.0) + idf[term] * tf * (K1 + 1) / norm
            matched[passage_id] = matched.get(passage_id, 0.0) + idf[term]
        return scores, matched, weight

    # --- the vectors ---------------------------------------------------------------------------
    def embed_missing(self, limit: int | None = None) -> int | None:
        """With embeddings on: another model's vectors removed, and the passages that have
        none for this model embedded (at most `limit`); how many, or None when embeddings are
        off or the model cannot serve."""
        embedder = self.embedder
        if embedder is None:
            return None
        done = 0
        while limit is None or done < limit:
            batch = _EMBED_BATCH if limit is None else min(_EMBED_BATCH, limit - done)
            with self.session() as session:
                stale = session.execute(select(KnowledgeVector.passage_id).where(
                    KnowledgeVector.model != embedder.model).limit(1)).first()
                rows = session.execute(
                    select(KnowledgePassage.id, KnowledgePassage.section, KnowledgePassage.text,
                           KnowledgeDocument.title)
                    .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgePassage.document_id)
                    .outerjoin(KnowledgeVector, (KnowledgeVector.passage_id == KnowledgePassage.id)
                               & (KnowledgeVector.model == embedder.model))
                    .where(KnowledgeVector.passage_id.is_(None))
                    .order_by(KnowledgePassage.id).limit(batch)).all()
            if stale is not None:
                with self._writes() as session, session.begin():
                    session.execute(delete(KnowledgeVector)
                                    .where(KnowledgeVector.model != embedder.model))
                continue
            if not rows:
                break
            vectors = self._embed([_embedded(r.title, NewPassage(r.text, section=r.section))
                                   for r in rows])
            if vectors is None:
                return None
            with self._writes() as session, session.begin():
                present = set(session.execute(select(KnowledgePassage.id).where(
                    KnowledgePassage.id.in_([r.id for r in rows]))).scalars())
                kept = [i for i, r in enumerate(rows) if r.id in present]
                session.execute(delete(KnowledgeVector).where(
                    KnowledgeVector.passage_id.in_([rows[i].id for i in kept])))
                self._store_vectors(session, embedder.model, [rows[i].id for i in kept],
                                    vectors[kept])
            done += len(rows)
        return done

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.embedder is None:
            return None
        try:
            vectors = self.embedder.embed(texts)
        except Exception as exc:  # a model that fails now (out of memory): full text goes on
            log.warning("knowledge embeddings failed, full text alone this time: %s",
                        type(exc).__name__)
            return None
        if vectors is None:
            return None
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"the embedder made {vectors.shape} for {len(texts)} texts")
        return vectors

    @staticmethod
    def _store_vectors(session: Any, model: str, ids: Sequence[int],
                       vectors: np.ndarray) -> None:
        if not ids:
            return
        dims = int(vectors.shape[1])
        session.execute(insert(KnowledgeVector), [
            {"passage_id": i, "model": model[:512], "dims": dims,
             "vector": np.ascontiguousarray(v, dtype="<f4").tobytes()}
            for i, v in zip(ids, vectors, strict=True)])

    def _matrix(self, session: Any, model: str) -> tuple[np.ndarray, np.ndarray]:
        """This model's vectors as one matrix (a row per passage id), read again only when the
        documents or the vectors changed."""
        documents = session.execute(select(func.count(), func.max(KnowledgeDocument.created_at),
                                           func.max(KnowledgeDocument.id))).one()
        vectors = session.execute(select(func.count(), func.max(KnowledgeVector.passage_id),
                                         func.sum(KnowledgeVector.passage_id))
                                  .where(KnowledgeVector.model == model)).one()
        signature = (model, *documents, *vectors)
        with self._vectors_lock:
            cached = self._vectors
            if cached is not None and cached[0] == signature:
                return cached[1], cached[2]
        rows = session.execute(select(KnowledgeVector.passage_id, KnowledgeVector.dims,
                                      KnowledgeVector.vector)
                               .where(KnowledgeVector.model == model)
                               .order_by(KnowledgeVector.passage_id)).all()
        dims = rows[0].dims if rows else 0
        rows = [r for r in rows if r.dims == dims]
        ids = np.array([r.passage_id for r in rows], dtype=np.int64)
        matrix = (np.frombuffer(b"".join(r.vector for r in rows), dtype="<f4")
                  .reshape(len(rows), dims) if rows else np.zeros((0, 0), np.float32))
        with self._vectors_lock:
            self._vectors = (signature, ids, matrix)
        return ids, matrix

    # --- the token scheme ----------------------------------------------------------------------
    @staticmethod
    def _stored_version(session: object) -> str | None:
        term = session.execute(  # type: ignore[attr-defined]
            select(KnowledgeTerm.term).where(KnowledgeTerm.term.like(f"{VERSION_TERM}%"))
        ).scalar()
        return None if term is None else term[len(VERSION_TERM):]

    def _reindex(self, session: object) -> int | None:
        """Inside a write transaction holding the terms' lock: when the stored scheme is not
        this one, every passage's postings, length and the term counts made again."""
        execute = session.execute  # type: ignore[attr-defined]
        version = tokens_version()
        stored = self._stored_version(session)
        if stored == version:
            return None
        execute(delete(KnowledgePosting))
        execute(delete(KnowledgeTerm))
        df: Counter[str] = Counter()
        passages = execute(
            select(KnowledgePassage.id, KnowledgePassage.section, KnowledgePassage.text,
                   KnowledgeDocument.title)
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgePassage.document_id)
            .order_by(KnowledgePassage.id)).all()
        lengths: dict[int, list[int]] = {}
        postings: list[dict[str, object]] = []
        for row in passages:
            counts = Counter(_indexed(row.title, NewPassage(row.text, section=row.section)))
            lengths.setdefault(sum(counts.values()), []).append(row.id)
            postings.extend({"term": t, "passage_id": row.id, "tf": n} for t, n in counts.items())
            df.update(counts.keys())
            if len(postings) >= 10 * _CHUNK:
                execute(insert(KnowledgePosting), postings)
                postings = []
        if postings:
            execute(insert(KnowledgePosting), postings)
        for length, ids in lengths.items():
            for part in _chunks(ids):
                execute(update(KnowledgePassage).where(KnowledgePassage.id.in_(part))
                        .values(length=length))
        for terms in _chunks(sorted(df.items())):
            execute(insert(KnowledgeTerm), [{"term": t, "df": n} for t, n in terms])
        execute(insert(KnowledgeTerm), [{"term": VERSION_TERM + version, "df": 1}])
        return len(passages)

    # --- the term counts ----------------------------------------------------------------------
    def _lock_terms(self, session: object) -> None:
        """Adds and removes one at a time (SQLite: the write lock taken at BEGIN)."""
        if self.dialect == "postgresql":
            session.execute(text(  # type: ignore[attr-defined]
                "LOCK TABLE knowledge_terms IN SHARE ROW EXCLUSIVE MODE"))

    def _count_terms(self, session: object, change: Counter[str]) -> None:
        execute = session.execute  # type: ignore[attr-defined]
        terms = sorted(change)
        known: set[str] = set()
        for part in _chunks(terms):
            known.update(execute(select(KnowledgeTerm.term)
                                 .where(KnowledgeTerm.term.in_(part))).scalars())
        fresh = [{"term": t, "df": change[t]} for t in terms if t not in known and change[t] > 0]
        if fresh:
            execute(insert(KnowledgeTerm), fresh)
        by_amount: dict[int, list[str]] = {}
        for t in terms:
            if t in known and change[t]:
                by_amount.setdefault(change[t], []).append(t)
        for amount, group in by_amount.items():
            for part in _chunks(group):
                execute(update(KnowledgeTerm).where(KnowledgeTerm.term.in_(part))
                        .values(df=KnowledgeTerm.df + amount))
        execute(delete(KnowledgeTerm).where(KnowledgeTerm.df <= 0))


def _document_row(d: KnowledgeDocument) -> DocumentRow:
    return DocumentRow(id=d.id, title=d.title, filename=d.filename, mime_type=d.mime_type,
                       size_bytes=d.size_bytes, pages=d.pages, passages=d.passage_count,
                       created_at=d.created_at, added_by=d.added_by)
