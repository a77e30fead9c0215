"""`sealion-bot knowledge add/list/search/remove` as processes against a SQLite log: a PDF keeps
its pages, an unreadable file exits 1 with a one-line reason and the rest are still added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.documents import text_pdf

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "KNOWLEDGE_"))}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", ENVIRONMENT="test",
               DATA_DIR=str(tmp_path / "data"), DATABASE_URL=f"sqlite:///{tmp_path}/log.db",
               **settings)
    return subprocess.run([sys.executable, "-m", "bot.cli", "knowledge", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_add_list_search_and_remove(tmp_path):
    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(text_pdf(["The clinic opens at eight in the morning on weekdays.",
                              "Dental cleaning costs 300 baht a visit."], title="Handbook"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf.read_bytes()[:80])
    added = cli(tmp_path, "add", str(pdf), str(broken))
    assert added.returncode == 1
    assert "added #1 Handbook (2 passages)" in added.stdout
    assert "broken.pdf: unreadable" in added.stderr
    listed = cli(tmp_path, "list")
    assert "#1\tHandbook\thandbook.pdf\t2 pages\t2 passages" in listed.stdout
    found = cli(tmp_path, "search", "how much is a dental cleaning?")
    assert found.stdout.splitlines()[0].endswith("#1 p.2 Handbook: Dental cleaning costs 300 "
                                                 "baht a visit.")
    assert cli(tmp_path, "remove", "1").stdout.strip() == "removed #1 Handbook"
    assert cli(tmp_path, "remove", "1").returncode == 1


def test_reindex_makes_a_stale_index_current(tmp_path):
    """A store whose postings another token scheme made (here: renamed terms and an old
    scheme's name) is made again by `knowledge reindex`; a current one is left alone."""
    from sqlalchemy import create_engine, text

    note = tmp_path / "pharmacy.md"
    note.write_text("# Pharmacy\n\nThe pharmacy closes at nine in the evening.\n",
                    encoding="utf-8")
    assert cli(tmp_path, "add", str(note)).returncode == 0
    assert cli(tmp_path, "reindex").stdout.strip() == "the index is current"
    engine = create_engine(f"sqlite:///{tmp_path}/log.db")
    with engine.begin() as connection:
        connection.execute(text("UPDATE knowledge_terms SET term = 'tokens 1:old' "
                                "WHERE term LIKE 'tokens %'"))
        connection.execute(text("UPDATE knowledge_postings SET term = term || '~'"))
    engine.dispose()
    assert cli(tmp_path, "reindex").stdout.strip() == "re-tokenised 1 passages"
    found = cli(tmp_path, "search", "when does the pharmacy close?")
    assert "Pharmacy: The pharmacy closes at nine" in found.stdout


def test_embeddings_from_the_cli(tmp_path):
    """KNOWLEDGE_EMBEDDING_MODEL: `add` stores the vectors, `reindex` makes those missing,
    `search` shows the cosine; a model that is not there is said once, and full text goes on."""
    from sqlalchemy import create_engine, text

    from tests.storage.log.test_knowledge_vectors import build_tiny_encoder

    note = tmp_path / "fees.md"
    note.write_text("# Fees\n\nA visit costs 150 baht.\n", encoding="utf-8")
    missing = cli(tmp_path, "add", str(note), KNOWLEDGE_EMBEDDING_MODEL=str(tmp_path / "none"))
    assert missing.returncode == 0
    assert missing.stderr.count("knowledge embeddings off") == 1
    assert "full text alone" in missing.stderr
    encoder = str(build_tiny_encoder(tmp_path / "encoder"))
    reindexed = cli(tmp_path, "reindex", KNOWLEDGE_EMBEDDING_MODEL=encoder)
    assert f"embedded 1 passages with {encoder}" in reindexed.stdout
    engine = create_engine(f"sqlite:///{tmp_path}/log.db")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT dims FROM knowledge_vectors")).scalars().all() \
            == [24]
    found = cli(tmp_path, "search", "how much does a visit cost", KNOWLEDGE_EMBEDDING_MODEL=encoder)
    assert found.stdout.splitlines()[0].endswith("Fees: A visit costs 150 baht.")
    assert len(found.stdout.split()[0:3]) == 3 and float(found.stdout.split()[2]) <= 1.0
