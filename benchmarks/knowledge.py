"""Knowledge base retrieval: recall@5, top-1 and MRR per language on the 11-language clinic
corpus (`benchmarks/data/knowledge/<lang>.json`: 28 passages, 31 reworded questions each),
full text only (BM25 over `bot.kernel.tokens`), and the "mixed" index holding all 308
passages. Each passage goes through the real path: a Markdown document (its title as the
heading) read by `workers.documents`, stored by `storage.knowledge` in SQLite (or the
`--database-url` given), searched with `KnowledgeBase.search`.

It also prints where strict mode's threshold sits: the best hit's relevance for each question
against its own language's index, and for the other languages' questions (nothing relevant).

    python benchmarks/knowledge.py [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from storage.knowledge import KnowledgeBase, NewPassage  # noqa: E402
from storage.log import upgrade_database  # noqa: E402
from workers.documents import passages, read_document  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "knowledge"
LANGUAGES = ("en", "id", "ms", "tl", "th", "vi", "ta", "my", "km", "lo", "zh")


def load(language: str) -> dict:
    return json.loads((DATA / f"{language}.json").read_text(encoding="utf-8"))


def fill(kb: KnowledgeBase, corpora: dict[str, dict]) -> dict[int, tuple[str, str]]:
    """Every passage as a Markdown document; returns document id -> (language, passage id)."""
    ids = {}
    for language, corpus in corpora.items():
        for doc in corpus["documents"]:
            data = f"# {doc['title']}\n\n{doc['text']}\n".encode()
            read = read_document(data, f"{doc['id']}.md")
            row = kb.add(title=read.title or doc["title"], filename=f"{doc['id']}.md",
                         mime_type=read.kind.value, sha256=hashlib.sha256(
                             language.encode() + data).hexdigest(), size_bytes=len(data),
                         pages=None, added_by="benchmark",
                         passages=[NewPassage(p.text, p.page, p.section)
                                   for p in passages(read)])
            ids[row.id] = (language, doc["id"])
    return ids


def empty(kb: KnowledgeBase) -> None:
    for document in kb.documents():
        kb.remove(document.id)


def ask(kb: KnowledgeBase, ids: dict[int, tuple[str, str]], corpus: dict, language: str):
    found = top1 = 0
    reciprocal = 0.0
    relevance = []
    seconds = []
    for question in corpus["questions"]:
        started = time.perf_counter()
        hits = kb.search(question["q"], 5)
        seconds.append(time.perf_counter() - started)
        ranks = [i for i, h in enumerate(hits, 1)
                 if ids[h.document_id] in {(language, a) for a in question["answer_ids"]}]
        found += bool(ranks)
        top1 += bool(ranks and ranks[0] == 1)
        reciprocal += 1 / ranks[0] if ranks else 0.0
        relevance.append(hits[0].relevance if hits else 0.0)
    n = len(corpus["questions"])
    return found / n, top1 / n, reciprocal / n, relevance, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/knowledge.db"
    upgrade_database(url)
    kb = KnowledgeBase(url)
    empty(kb)
    corpora = {language: load(language) for language in LANGUAGES}
    rows = []
    own: list[float] = []
    foreign: list[float] = []
    timings: list[float] = []
    for language in LANGUAGES:
        ids = fill(kb, {language: corpora[language]})
        recall, top1, mrr, relevance, seconds = ask(kb, ids, corpora[language], language)
        own += relevance
        timings += seconds
        for other in LANGUAGES:
            if other != language:
                foreign += [h[0].relevance if (h := kb.search(q["q"], 1)) else 0.0
                            for q in corpora[other]["questions"]]
        rows.append((language, recall, top1, mrr))
        empty(kb)
    ids = fill(kb, corpora)
    mixed = [ask(kb, ids, corpora[language], language) for language in LANGUAGES]
    n = sum(len(corpora[lang]["questions"]) for lang in LANGUAGES)
    weights = [len(corpora[lang]["questions"]) / n for lang in LANGUAGES]
    rows.append(("mixed", *(sum(w * m[i] for w, m in zip(weights, mixed, strict=True))
                            for i in range(3))))
    empty(kb)
    print("| | " + " | ".join(r[0] for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for index, name in ((1, "recall@5"), (2, "top-1"), (3, "MRR")):
        print(f"| {name} | " + " | ".join(f"{r[index]:.2f}" for r in rows) + " |")
    cuts = statistics.quantiles(own, n=20)
    print(f"\nbest hit's relevance, own language: 5th percentile {cuts[0]:.2f}, "
          f"median {statistics.median(own):.2f}")
    cuts = statistics.quantiles(foreign, n=20)
    print(f"best hit's relevance, another language's questions: median "
          f"{statistics.median(foreign):.2f}, 95th percentile {cuts[-1]:.2f}")
    for threshold in (0.1, 0.15, 0.2, 0.25, 0.3):
        kept = sum(r >= threshold for r in own) / len(own)
        leaked = sum(r >= threshold for r in foreign) / len(foreign)
        print(f"threshold {threshold:.2f}: own questions answered {kept:.2f}, "
              f"foreign questions answered {leaked:.2f}")
    print(f"\nsearch: median {statistics.median(timings) * 1000:.1f} ms "
          f"({len(timings)} questions, 28 passages)")


if __name__ == "__main__":
    main()
