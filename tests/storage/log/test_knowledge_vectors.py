"""The knowledge base's embeddings (KNOWLEDGE_EMBEDDING_MODEL): vectors stored at add, removed
with their document, filled and re-made by `embed_missing`, hybrid ranking by reciprocal rank
fusion, and full text alone when the model cannot load (storage/knowledge.py,
workers/models/embedding.py). On SQLite and PostgreSQL; the tiny random-weight encoder is built
here, offline."""

from __future__ import annotations

import hashlib
import logging
import re

import numpy as np
import pytest
from sqlalchemy import func, select

from storage.knowledge import KnowledgeBase, NewPassage
from storage.log.models import KnowledgeVector
from workers.models.embedding import TransformersEmbedder
from workers.protocol import KnowledgeMode
from workers.turn.knowledge import Knowledge

#: The fake's meanings: words that share an axis are "close" though they share no token.
AXES = {"doctor": 0, "physician": 0, "nurse": 0, "cost": 1, "baht": 1, "price": 1, "open": 2,
        "hours": 2, "opens": 2}
DIMS = 4


class FakeEmbedder:
    """Deterministic: a text's vector counts its words' axes (a text of none: the last axis)."""

    def __init__(self, model: str = "fake-a", dims: int = DIMS) -> None:
        self.model = model
        self.dims = dims
        self.calls: list[int] = []

    def embed(self, texts):
        self.calls.append(len(texts))
        rows = np.zeros((len(texts), self.dims), np.float32)
        for i, t in enumerate(texts):
            for word in re.findall(r"\w+", t.lower()):
                if word in AXES:
                    rows[i, AXES[word]] += 1
            if not rows[i].any():
                rows[i, self.dims - 1] = 1
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


class Broken:
    model = "broken"

    def embed(self, texts):
        return None


def add(kb: KnowledgeBase, title: str, *texts: str):
    return kb.add(title=title, filename=f"{title}.txt", mime_type="text/plain",
                  sha256=hashlib.sha256("|".join((title, *texts)).encode()).hexdigest(),
                  size_bytes=10, pages=None, added_by="test",
                  passages=[NewPassage(t) for t in texts])


def vectors(kb: KnowledgeBase) -> list[tuple[int, str, int, int]]:
    with kb.session() as session:
        return [(r.passage_id, r.model, r.dims, len(r.vector)) for r in session.execute(
            select(KnowledgeVector).order_by(KnowledgeVector.passage_id)).scalars()]


def test_vectors_are_stored_at_add_and_removed_with_the_document(conversation_log):
    kb = KnowledgeBase(conversation_log.engine, embedder=FakeEmbedder())
    clinic = add(kb, "Clinic", "The clinic opens at 8 am.", "Somchai is our physician.")
    add(kb, "Pharmacy", "Medicine prices are on the shelf.")
    stored = vectors(kb)
    assert [(m, d, n) for _, m, d, n in stored] == [("fake-a", DIMS, 4 * DIMS)] * 3
    _, passages = kb.document(clinic.id)
    assert {p.id for p in passages} <= {i for i, *_ in stored}
    kb.remove(clinic.id)
    assert len(vectors(kb)) == 1
    assert {i for i, *_ in vectors(kb)}.isdisjoint(p.id for p in passages)


def test_hybrid_finds_a_passage_only_the_vectors_find(conversation_log):
    plain = KnowledgeBase(conversation_log.engine)
    add(plain, "Clinic", "The clinic opens at 8 am on weekdays.", "Somchai is our physician.")
    assert plain.search("doctor") == []  # no shared token: full text finds nothing
    kb = KnowledgeBase(conversation_log.engine, embedder=FakeEmbedder())
    hits = kb.search("doctor")  # the vectors are made lazily, then searched
    assert [h.text for h in hits][0] == "Somchai is our physician."
    assert hits[0].relevance == 0 and hits[0].similarity == pytest.approx(1)
    # Both sides count: the clinic's hours by their words, the physician by meaning.
    both = kb.search("doctor clinic weekdays", k=2)
    assert {h.text for h in both} == {"The clinic opens at 8 am on weekdays.",
                                      "Somchai is our physician."}
    # The matrix is cached, and read again once the knowledge base changed.
    add(kb, "Ward", "A nurse answers at night.")
    assert "A nurse answers at night." in [h.text for h in kb.search("nurse doctor", k=5)]


def test_strict_mode_keeps_a_passage_relevant_by_similarity(conversation_log):
    kb = KnowledgeBase(conversation_log.engine, embedder=FakeEmbedder())
    add(kb, "Clinic", "Somchai is our physician.")
    knowledge = Knowledge(mode="strict", base=kb, top_k=5, max_tokens=500, min_relevance=0.2,
                          min_similarity=0.5)
    hit = kb.search("doctor")[0]
    assert knowledge._relevant(hit)
    hit_far = kb.search("weather tomorrow")[0]  # found by the vectors, but not close enough
    assert hit_far.similarity is not None and hit_far.similarity < 0.5
    assert not knowledge._relevant(hit_far)
    assert knowledge.mode() is KnowledgeMode.STRICT


def test_embed_missing_fills_and_remakes_for_another_model(conversation_log):
    add(KnowledgeBase(conversation_log.engine), "Clinic", "The clinic opens at 8 am.",
        "A visit costs 150 baht.")  # embeddings off: no vectors
    first = KnowledgeBase(conversation_log.engine, embedder=FakeEmbedder("fake-a"))
    assert vectors(first) == []
    assert first.embed_missing() == 2
    assert {m for _, m, *_ in vectors(first)} == {"fake-a"}
    assert first.embed_missing() == 0  # nothing left to do
    other = FakeEmbedder("fake-b", dims=6)
    second = KnowledgeBase(conversation_log.engine, embedder=other)
    assert second.embed_missing() == 2
    assert {(m, d) for _, m, d, _ in vectors(second)} == {("fake-b", 6)}
    assert second.search("price")[0].text == "A visit costs 150 baht."


def test_a_model_that_cannot_serve_leaves_full_text(conversation_log):
    kb = KnowledgeBase(conversation_log.engine, embedder=Broken())
    add(kb, "Clinic", "A visit costs 150 baht.")
    assert vectors(kb) == []
    hits = kb.search("How much does a visit cost?")
    assert hits[0].text == "A visit costs 150 baht." and hits[0].similarity is None
    assert kb.embed_missing() is None


def test_an_embedder_that_raises_leaves_full_text(conversation_log):
    class Raising(FakeEmbedder):
        def embed(self, texts):
            raise MemoryError("out of memory")

    kb = KnowledgeBase(conversation_log.engine, embedder=Raising())
    add(kb, "Clinic", "A visit costs 150 baht.")
    assert vectors(kb) == []
    assert kb.search("visit cost")[0].similarity is None


def test_a_missing_checkpoint_says_so_once_and_search_goes_on(conversation_log, tmp_path,
                                                               caplog):
    embedder = TransformersEmbedder(str(tmp_path / "no-such-model"))
    kb = KnowledgeBase(conversation_log.engine, embedder=embedder)
    with caplog.at_level(logging.WARNING, logger="workers.models.embedding"):
        add(kb, "Clinic", "A visit costs 150 baht.")
        assert kb.search("visit cost")[0].text == "A visit costs 150 baht."
        assert kb.search("visit cost")[0].similarity is None
    told = [r.getMessage() for r in caplog.records if "knowledge embeddings off" in
            r.getMessage()]
    assert len(told) == 1
    assert "no-such-model" in told[0] and "full text alone" in told[0]
    assert embedder.health().state.value == "failed"


def build_tiny_encoder(path):
    """A BERT of one layer and random weights, with a WordPiece tokenizer of a few words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "clinic", "opens", "at", "8", "am",
             "visit", "costs", "150", "baht", "doctor", "how", "much", "."]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]",
                                        unk_token="[UNK]", cls_token="[CLS]",
                                        sep_token="[SEP]")
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(words), hidden_size=24, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    return path


@pytest.mark.integration
def test_a_tiny_encoder_embeds_and_stores_its_dimension(conversation_log, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = build_tiny_encoder(tmp_path / "encoder")
    embedder = TransformersEmbedder(str(path), max_length=8, device="cpu")
    rows = embedder.embed(["the clinic opens at 8 am .", "how much " * 40])  # cut to 8
    assert rows.shape == (2, 24) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    assert embedder.health().serving and embedder.health().details["dims"] == 24
    kb = KnowledgeBase(conversation_log.engine, embedder=embedder)
    add(kb, "Clinic", "The clinic opens at 8 am.", "A visit costs 150 baht.")
    assert [(d, n) for _, _, d, n in vectors(kb)] == [(24, 24 * 4)] * 2
    hits = kb.search("how much does a visit cost", k=2)
    assert hits[0].text == "A visit costs 150 baht." and hits[0].similarity is not None
    with kb.session() as session:
        assert session.scalar(select(func.count()).select_from(KnowledgeVector)) == 2


def test_a_web_process_never_loads_the_embedding_model(tmp_path):
    """The API (and `dev`'s own process) answers in milliseconds and loads no model: its
    Services build no embedder, whatever KNOWLEDGE_EMBEDDING_MODEL says; a worker's do."""
    from bot.composition import Services
    from bot.kernel.settings import Settings
    from bot.web.app import create_app

    settings = Settings(_env_file=None, environment="test", data_dir=str(tmp_path),
                        database_url=f"sqlite:///{tmp_path / 'log.db'}",
                        knowledge_embedding_model=str(tmp_path / "encoder"))
    worker = Services(settings)
    assert worker.embedder is not None and worker.knowledge.embedder is worker.embedder
    web = Services(settings)
    create_app(settings, services=web)
    assert web.embedder is None and web.knowledge.embedder is None
    worker.close()
    web.close()
