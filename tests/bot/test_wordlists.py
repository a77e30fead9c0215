"""The detector's word lists come from data files, read once, read-only, shipped with the
package; the two derived tables are built the way bot/kernel/wordlists.py says."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bot.kernel.wordlists import lexicon, weighted

ROOT = Path(__file__).resolve().parents[2]
WORDS = resources.files("bot.kernel").joinpath("data", "words")


def test_read_once_and_read_only() -> None:
    assert lexicon() is lexicon()
    with pytest.raises(TypeError):
        lexicon().en["hello"] = 1.0  # type: ignore[index]


def test_tables_hold_what_the_files_say() -> None:
    lex = lexicon()
    assert lex.en["the"] == 1.5 and lex.en["i'm"] == 2.0
    assert lex.tl["salamat"] == 2.0 and lex.vi["khong"] == 2.0
    assert lex.ms_over_id["kerana"] == 3.0 and lex.ms_over_id_pairs[("rumah", "sakit")] == -3.0
    assert {"haha", "ok", "lol"} <= lex.neutral and "bus" in lex.lookalikes


def test_derived_tables() -> None:
    lex = lexicon()
    written = weighted("ms_over_id_written.txt")
    assert all(word in lex.ms_over_id for word in written)  # both contrast files count
    assert written["soalan"] == lex.ms_over_id["soalan"]
    # A contrast-list word no other list has is a Malay-family word too, lookalikes aside.
    assert "mesyuarat" not in weighted("malay.txt") and lex.malay["mesyuarat"] == 1.0
    assert "bus" in lex.ms_over_id and "bus" not in lex.malay
    assert "sila" in lex.ms_over_id and "sila" in lex.tl and "sila" not in lex.malay


def test_a_word_before_any_weight_is_refused(tmp_path, monkeypatch) -> None:
    from bot.kernel import wordlists

    monkeypatch.setattr(wordlists, "_lines", lambda name: iter(["oops", "[+1]", "fine"]))
    with pytest.raises(ValueError, match="before the first"):
        wordlists.weighted("broken.txt")


def test_every_list_is_package_data() -> None:
    files = sorted(entry.name for entry in WORDS.iterdir() if entry.name.endswith(".txt"))
    assert len(files) == 9
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    assert "data/words/*.txt" in package_data["bot.kernel"]
